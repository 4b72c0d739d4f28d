// `npm start` where Electron cannot run: one line saying why, then browser mode with its URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface Started {
  lines: string[];
  url: string;
  stop(): Promise<{ code: number | null; output: string }>;
}

/** Runs bin/start.mjs until it prints the URL line (or exits, which fails the test). */
function start(env: NodeJS.ProcessEnv, dataDir: string): Promise<Started> {
  const child = spawn(process.execPath, ['bin/start.mjs', '--port', '0', '--data', dataDir, '--model', path.join(dataDir, 'no-model')], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no URL line within 60 s; output:\n${output}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const url = output.split('\n').find((line) => line.startsWith('http://127.0.0.1:'));
      if (url === undefined) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      resolve({
        lines: output.split('\n'),
        url: url.trim(),
        async stop() {
          child.kill('SIGTERM');
          return { code: await exited, output };
        },
      });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`start.mjs exited (${code}) before printing a URL; output:\n${output}`));
    });
  });
}

function fixture() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'inkling-start-'));
  const renderer = path.join(dir, 'renderer');
  mkdirSync(renderer);
  writeFileSync(path.join(renderer, 'index.html'), '<!doctype html><title>Inkling</title>');
  const env: NodeJS.ProcessEnv = { ...process.env, INKLING_RENDERER_DIR: renderer };
  delete env.INKLING_MODEL;
  return { dir, env };
}

test('without the Electron binary: one line saying why, then the browser-mode URL, and a clean stop', async () => {
  const { dir, env } = fixture();
  // The electron package's own switch to a binary elsewhere: an empty folder means "no binary".
  const emptyDist = path.join(dir, 'no-electron');
  mkdirSync(emptyDist);
  try {
    const started = await start({ ...env, ELECTRON_OVERRIDE_DIST_PATH: emptyDist }, path.join(dir, 'data'));
    const why = started.lines.filter((line) => line.startsWith('Electron cannot start'));
    assert.equal(why.length, 1);
    assert.match(why[0]!, /Electron binary is not installed .*; starting browser mode instead\.$/);
    assert.match(started.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+$/);

    const page = await fetch(started.url);
    assert.equal(page.status, 200);
    assert.equal(await page.text(), '<!doctype html><title>Inkling</title>');

    const { code, output } = await started.stop();
    assert.equal(code, 0, output);
    assert.match(output, /SIGTERM: closing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with a binary but no display (Linux): says so and starts browser mode', { skip: process.platform !== 'linux' }, async () => {
  const { dir, env } = fixture();
  const dist = path.join(dir, 'electron-dist');
  mkdirSync(dist);
  // A stand-in binary that would fail loudly if start.mjs ran it.
  writeFileSync(path.join(dist, 'electron'), '#!/bin/sh\necho "fake electron was launched"; exit 3\n');
  chmodSync(path.join(dist, 'electron'), 0o755);
  const noDisplay: NodeJS.ProcessEnv = { ...env, ELECTRON_OVERRIDE_DIST_PATH: dist };
  delete noDisplay.DISPLAY;
  delete noDisplay.WAYLAND_DISPLAY;
  try {
    const started = await start(noDisplay, path.join(dir, 'data'));
    assert.ok(started.lines.includes('Electron cannot start: there is no display (DISPLAY and WAYLAND_DISPLAY are unset); starting browser mode instead.'));
    const { code, output } = await started.stop();
    assert.equal(code, 0, output);
    assert.doesNotMatch(output, /fake electron was launched/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
