#!/usr/bin/env node
// `npm start [-- --data DIR --model DIR --backend B --port P]`: the desktop app when Electron can run here,
// else browser mode (one line says why, then the server prints the URL to open).
//
// Works from a fresh clone after `npm ci`: the renderer is built first when dist/renderer is missing.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// `--browser` (what `npm run web` passes) skips Electron and serves the app to a browser.
const browserOnly = process.argv.includes('--browser');
const args = process.argv.slice(2).filter((a) => a !== '--browser');

/**
 * The Electron binary, or why there is none. Deliberately does not `require('electron')`: when the binary
 * is missing, that require starts a download (impossible offline) before it fails.
 */
function findElectron(env = process.env) {
  let pkgDir;
  try {
    pkgDir = path.dirname(createRequire(import.meta.url).resolve('electron/package.json'));
  } catch {
    return { reason: 'the electron package is not installed' };
  }
  const pathFile = path.join(pkgDir, 'path.txt');
  const relative = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : null;
  // ELECTRON_OVERRIDE_DIST_PATH is the electron package's own switch to a binary elsewhere.
  const override = env.ELECTRON_OVERRIDE_DIST_PATH;
  const binary = override ? path.join(override, relative || 'electron') : relative ? path.join(pkgDir, 'dist', relative) : null;
  if (binary === null || !existsSync(binary)) {
    return { reason: `the Electron binary is not installed (${binary ?? path.join(pkgDir, 'dist')} is missing)` };
  }
  if (process.platform === 'linux' && !env.DISPLAY && !env.WAYLAND_DISPLAY) {
    return { reason: 'there is no display (DISPLAY and WAYLAND_DISPLAY are unset)' };
  }
  return { binary };
}

function buildRendererIfMissing() {
  // INKLING_RENDERER_DIR serves another build (tests, a packaged copy): never build over it.
  if (process.env.INKLING_RENDERER_DIR) return;
  if (existsSync(path.join(root, 'dist', 'renderer', 'index.html'))) return;
  console.log('Building the renderer (first start)…');
  const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  const result = spawnSync(process.execPath, [vite, 'build', '--config', 'renderer/vite.config.ts'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    console.error('inkling: building the renderer failed; run `npm run build:renderer` to see why.');
    process.exit(1);
  }
}

async function startElectron(binary) {
  const { buildPreload } = await import('../main/electron/build.mjs');
  await buildPreload();
  const env = { ...process.env };
  // Set by some tools; it would make the binary behave as plain Node and ignore the app.
  delete env.ELECTRON_RUN_AS_NODE;
  const child = spawn(binary, [path.join(root, 'main', 'electron', 'entry.mjs'), ...args], { cwd: root, env, stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

async function startBrowserMode() {
  // In this process (not a child) so that a signal to `npm start` reaches the server directly.
  const { register } = await import('tsx/esm/api');
  register();
  const { runWebServer } = await import('../main/server/cli.ts');
  await runWebServer(args);
}

/**
 * Electron 45 downloads its binary on first use rather than at install. Try that once (a user's machine is
 * usually online); offline it fails within a second and browser mode takes over.
 */
function downloadElectronOnce() {
  if (process.env.ELECTRON_SKIP_BINARY_DOWNLOAD) return;
  let installer;
  try {
    installer = createRequire(import.meta.url).resolve('electron/install.js');
  } catch {
    return;
  }
  console.log('Downloading the Electron binary (first start)…');
  const result = spawnSync(process.execPath, [installer], { cwd: root, stdio: 'pipe', timeout: 10 * 60_000 });
  if (result.status !== 0) console.log('The Electron download failed (offline?).');
}

let electron = browserOnly ? { reason: 'browser mode was asked for' } : findElectron();
if (!browserOnly && !electron.binary && /binary is not installed/.test(electron.reason)) {
  downloadElectronOnce();
  electron = findElectron();
}
if (electron.binary) {
  buildRendererIfMissing();
  await startElectron(electron.binary);
} else {
  if (!browserOnly) console.log(`Electron cannot start: ${electron.reason}; starting browser mode instead.`);
  buildRendererIfMissing();
  await startBrowserMode().catch((err) => {
    console.error(`inkling: ${err?.message ?? err}`);
    process.exit(1);
  });
}
