// `inkling download` into a real (temporary) data folder, from a hub on 127.0.0.1 that serves the tiny fixture
// in the hub's layout: the model lands where the app's own download puts it, registered with its checksum,
// and the app then lists it (and starts on it after --activate). No real host is contacted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { downloadCommand } from '../../main/cli/download.js';
import { HUB_FILES, useLocalHub } from '../models/local-hub.js';
import { openApp, registered, runCommand, tmpDir } from './helpers.js';

const weightsSha256 = createHash('sha256').update(HUB_FILES['model.safetensors']!).digest('hex');
const hub = useLocalHub();

const run = (args: string[], onStderr?: (text: string) => void, signal?: AbortSignal) => runCommand(downloadCommand, args, { onStderr, signal });

test('download into the data folder: models/hub-gpt2/, registered as downloaded with its sha256, listed by the app', async () => {
  const dataDir = path.join(tmpDir('download-data'), 'not-yet-there');
  const r = await run(['gpt2', '--data-dir', dataDir, '--base', hub.url, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1, 'one JSON object');
  const out = JSON.parse(r.stdout);
  assert.equal(out.id, 'hub-gpt2');
  assert.equal(out.name, 'GPT-2 (124M)');
  assert.equal(out.source, 'downloaded');
  assert.equal(out.origin, 'gpt2');
  assert.equal(out.repo, 'gpt2');
  assert.equal(out.active, false);
  assert.equal(out.registered, true);
  assert.equal(out.sha256, weightsSha256);
  assert.equal(out.target, path.join(dataDir, 'models', 'hub-gpt2'));
  assert.equal(out.dataDir, dataDir);
  assert.equal(r.stderr, '', 'no progress lines with --json');
  assert.deepEqual(readdirSync(out.target).sort(), ['config.json', 'merges.txt', 'model.safetensors', 'vocab.json']);

  const { app, started } = await openApp(dataDir);
  try {
    const listed = await app.handlers.listModels();
    assert.deepEqual(listed.map((m) => [m.id, m.name, m.source, m.origin, m.active]), [['hub-gpt2', 'GPT-2 (124M)', 'downloaded', 'gpt2', false]]);
    assert.equal((await app.handlers.listModelDownloads()).find((o) => o.repo === 'gpt2')?.installed, true);
    assert.deepEqual(started, [], 'not active: the app does not start on it');
    // The app can use it: activation checks the registered sha256 against the downloaded weights.
    await app.handlers.activateModel('hub-gpt2');
    assert.deepEqual(started, [out.target]);
  } finally {
    await app.close();
  }

  // Asked again: the app would refuse the same, and nothing changes.
  const again = await run(['gpt2', '--data-dir', dataDir, '--base', hub.url]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^inkling download: gpt2 is downloaded already\n$/);
});

test('--activate: progress on stderr, and the app starts on the model; the hub and data folder can come from the environment', async () => {
  const dataDir = tmpDir('download-activate');
  const saved = { data: process.env.INKLING_DATA_DIR, hub: process.env.INKLING_HUB_URL };
  process.env.INKLING_DATA_DIR = dataDir;
  process.env.INKLING_HUB_URL = hub.url;
  let r;
  try {
    r = await run(['gpt2', '--activate']);
  } finally {
    for (const [name, value] of [['INKLING_DATA_DIR', saved.data], ['INKLING_HUB_URL', saved.hub]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^id: +hub-gpt2$/m);
  assert.match(r.stdout, /^name: +GPT-2 \(124M\)$/m);
  assert.match(r.stdout, /^folder: +.*models[\\/]hub-gpt2$/m);
  assert.match(r.stdout, /the app starts on it/);
  assert.match(r.stderr, /^downloading gpt2… \d+% \([\d.]+ MiB of [\d.]+ MiB\)$/m, 'progress on stderr');

  const { models, activeId } = registered(dataDir);
  assert.equal(activeId, 'hub-gpt2');
  assert.deepEqual(models.map((m) => [m.id, m.sha256]), [['hub-gpt2', weightsSha256]]);
  const { app, started } = await openApp(dataDir);
  try {
    assert.deepEqual(started, [path.join(dataDir, 'models', 'hub-gpt2')]);
  } finally {
    await app.close();
  }
});

test('a cancelled download exits 130 and registers nothing; run again, it resumes and completes', async () => {
  const dataDir = tmpDir('download-cancel');
  const aborter = new AbortController();
  hub.throttleBytes = 64 * 1024;
  let r;
  try {
    // Cancel once part of the weights has arrived (the small files come first, about a fifth of the bytes).
    r = await run(['gpt2', '--data-dir', dataDir, '--base', hub.url], (line) => {
      const percent = /… (\d+)%/.exec(line)?.[1];
      if (percent !== undefined && Number(percent) >= 40) aborter.abort();
    }, aborter.signal);
  } finally {
    hub.throttleBytes = null;
  }
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /^inkling download: the download was cancelled/m);
  assert.deepEqual(registered(dataDir).models, []);
  assert.ok(!existsSync(path.join(dataDir, 'models', 'hub-gpt2')), 'no model folder until it is whole');

  hub.ranges.length = 0;
  const again = await run(['gpt2', '--data-dir', dataDir, '--base', hub.url, '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.ok(hub.ranges.some((range) => Number(/\d+/.exec(range)![0]) > 0), `the weights were resumed, not fetched again (ranges: ${hub.ranges.join(', ')})`);
  assert.deepEqual(registered(dataDir).models.map((m) => [m.id, m.sha256]), [['hub-gpt2', weightsSha256]]);
});

test('offline and usage errors are one clear line, and leave the data folder without a model', async () => {
  const dataDir = tmpDir('download-refuse');
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));

  const offline = await run(['gpt2', '--data-dir', dataDir, '--base', `http://127.0.0.1:${port}`]);
  assert.equal(offline.code, 1);
  assert.equal(offline.stdout, '');
  assert.equal(offline.stderr.trim().split('\n').length, 1, offline.stderr);
  assert.match(offline.stderr, /^inkling download: cannot reach the model hub — are you offline\?/);
  assert.deepEqual(registered(dataDir).models, []);

  for (const args of [['llama', '--data-dir', dataDir], [], ['gpt2', '--to', dataDir, '--activate'], ['gpt2', '--to', dataDir, '--data-dir', dataDir], ['gpt2', '--data-dir', '']]) {
    const r = await run([...args, '--base', hub.url]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
  assert.deepEqual(registered(dataDir).models, []);
});

test('--to only downloads into the folder: one JSON object, nothing registered', async () => {
  const dataDir = tmpDir('download-to-data');
  const to = tmpDir('download-to');
  const saved = process.env.INKLING_DATA_DIR;
  process.env.INKLING_DATA_DIR = dataDir;
  let r;
  try {
    r = await run(['gpt2', '--to', to, '--base', hub.url, '--json']);
  } finally {
    if (saved === undefined) delete process.env.INKLING_DATA_DIR;
    else process.env.INKLING_DATA_DIR = saved;
  }
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1, 'one JSON object');
  const out = JSON.parse(r.stdout);
  assert.equal(out.registered, false);
  assert.equal(out.target, path.join(to, 'gpt2'));
  assert.equal(out.bytes, Object.values(HUB_FILES).reduce((n, b) => n + b.length, 0));
  assert.ok(readFileSync(path.join(to, 'gpt2', 'model.safetensors')).equals(HUB_FILES['model.safetensors']!));
  assert.ok(!existsSync(path.join(dataDir, 'models')), 'the data folder is not touched');
});
