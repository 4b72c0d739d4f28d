#!/usr/bin/env node
// `npm run dist [-- electron-builder options]`: the production build, then electron-builder with
// electron-builder.yml (installers for this OS into release/; `--dir` for the unpacked app only).
//
// electron-builder rebuilds native modules for Electron's ABI inside this checkout's node_modules, after which
// plain Node (tests, browser mode, the CLI) can no longer load better-sqlite3. So whatever electron-builder
// did, this script checks afterwards and rebuilds better-sqlite3 for Node when it has to.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
// Publishing is something to ask for (`-- --publish always`), never a side effect of building.
const publish = args.some((a) => a === '--publish' || a === '-p' || a.startsWith('--publish=')) ? [] : ['--publish', 'never'];

function run(command, commandArgs) {
  const result = spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' && command === 'npm' });
  return result.status ?? 1;
}

function sqliteLoadsInNode() {
  const probe = "const Database = require('better-sqlite3'); new Database(':memory:').close();";
  return spawnSync(process.execPath, ['-e', probe], { cwd: root, stdio: 'ignore' }).status === 0;
}

let status = run(process.execPath, [path.join(root, 'scripts', 'build.mjs')]);
if (status === 0) {
  try {
    status = run(process.execPath, [path.join(root, 'node_modules', 'electron-builder', 'cli.js'), ...publish, ...args]);
  } finally {
    if (!sqliteLoadsInNode()) {
      console.log('\nbetter-sqlite3 is now built for Electron; rebuilding it for Node (tests, browser mode, CLI)…');
      if (run('npm', ['rebuild', 'better-sqlite3']) !== 0) {
        console.error('inkling: `npm rebuild better-sqlite3` failed; run it by hand before `npm test`.');
        status ||= 1;
      }
    }
  }
}
process.exit(status);
