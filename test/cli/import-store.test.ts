// `inkling import` into a real (temporary) data folder: the model lands where the app's own import puts it,
// registered with its checksum, and the app then lists it (and starts on it after --activate).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { importCommand } from '../../main/cli/import.js';
import { openApp, registered, repoRoot, runCommand, tinyGpt2, tmpDir } from './helpers.js';

const tinySha256 = createHash('sha256').update(readFileSync(path.join(tinyGpt2, 'model.safetensors'))).digest('hex');

const run = (args: string[]) => runCommand(importCommand, args);

test('import into the data folder: copied to models/<id>/, registered with its sha256, listed by the app', async () => {
  const dataDir = path.join(tmpDir('import-data'), 'not-yet-there');
  const r = await run([tinyGpt2, '--data-dir', dataDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1, 'one JSON object');
  const out = JSON.parse(r.stdout);
  assert.equal(out.id, 'tiny-gpt2');
  assert.equal(out.name, 'tiny-gpt2');
  assert.equal(out.source, 'imported');
  assert.equal(out.origin, tinyGpt2);
  assert.equal(out.active, false);
  assert.equal(out.registered, true);
  assert.equal(out.sha256, tinySha256);
  assert.equal(out.target, path.join(dataDir, 'models', 'tiny-gpt2'));
  assert.equal(out.dataDir, dataDir);
  assert.doesNotMatch(r.stderr, /copying/, 'no progress lines with --json');
  assert.deepEqual(readdirSync(out.target).sort(), ['config.json', 'inkling-source.json', 'model.safetensors']);

  const { app, started } = await openApp(dataDir);
  try {
    const listed = await app.handlers.listModels();
    assert.deepEqual(listed.map((m) => [m.id, m.name, m.source, m.origin, m.active]), [['tiny-gpt2', 'tiny-gpt2', 'imported', tinyGpt2, false]]);
    assert.equal(listed[0]!.shape, '2 layers × 32, 4 heads, context 64, vocabulary 50257');
    assert.deepEqual(started, [], 'not active: the app does not start on it');
    // The app can use it: activation checks the registered sha256 against the copied weights.
    await app.handlers.activateModel('tiny-gpt2');
    assert.deepEqual(started, [out.target]);
    // Browser-mode handlers (these) have no native dialog.
    await assert.rejects(app.handlers.pickImportSource(), (e: Error & { code?: string }) => e.code === 'NOT_AVAILABLE');
  } finally {
    await app.close();
  }
});

test('--name and --activate: a second import gets its own id, and the app starts on it', async () => {
  const dataDir = tmpDir('import-activate');
  assert.equal((await run([tinyGpt2, '--data-dir', dataDir])).code, 0);
  const r = await run([tinyGpt2, '--data-dir', dataDir, '--name', 'My tiny model', '--activate']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^id: +My-tiny-model$/m);
  assert.match(r.stdout, /^name: +My tiny model$/m);
  assert.match(r.stdout, /^folder: +.*models[\\/]My-tiny-model$/m);
  assert.match(r.stdout, /the app starts on it/);
  assert.match(r.stderr, /^copying… 100%$/m, 'progress on stderr');

  const { models, activeId } = registered(dataDir);
  assert.equal(activeId, 'My-tiny-model');
  assert.deepEqual(models.map((m) => m.id).sort(), ['My-tiny-model', 'tiny-gpt2']);
  assert.equal(models.find((m) => m.id === 'My-tiny-model')!.sha256, tinySha256);
  const { app, started } = await openApp(dataDir);
  try {
    assert.deepEqual(started, [path.join(dataDir, 'models', 'My-tiny-model')]);
    assert.equal((await app.handlers.listModels()).find((m) => m.active)?.id, 'My-tiny-model');
  } finally {
    await app.close();
  }
});

test('without --data-dir the data folder is the app\'s: INKLING_DATA_DIR', async () => {
  const dataDir = tmpDir('import-env');
  const before = process.env.INKLING_DATA_DIR;
  process.env.INKLING_DATA_DIR = dataDir;
  try {
    const r = await run([tinyGpt2, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).target, path.join(dataDir, 'models', 'tiny-gpt2'));
  } finally {
    if (before === undefined) delete process.env.INKLING_DATA_DIR;
    else process.env.INKLING_DATA_DIR = before;
  }
});

test('refusals are one clear line, no stack, and leave the data folder without a model', async () => {
  const dataDir = tmpDir('import-refuse');
  const sources = tmpDir('import-sources');
  const bert = path.join(sources, 'bert');
  mkdirSync(bert);
  writeFileSync(path.join(bert, 'config.json'), JSON.stringify({ model_type: 'bert' }));
  copyFileSync(path.join(tinyGpt2, 'model.safetensors'), path.join(bert, 'model.safetensors'));
  const noWeights = path.join(sources, 'no-weights');
  mkdirSync(noWeights);
  copyFileSync(path.join(tinyGpt2, 'config.json'), path.join(noWeights, 'config.json'));
  writeFileSync(path.join(noWeights, 'pytorch_model.bin'), 'x');
  const empty = path.join(sources, 'empty');
  mkdirSync(empty);

  const cases: Array<[string, RegExp]> = [
    [bert, /only GPT-2/],
    [noWeights, /no model\.safetensors \(it has pytorch_model\.bin/],
    [empty, /no config\.json — not a Hugging Face model folder/],
    [path.join(sources, 'missing'), /no such file or folder/],
  ];
  for (const [source, message] of cases) {
    const r = await run([source, '--data-dir', dataDir]);
    assert.equal(r.code, 3, `${source}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^inkling import: /);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  assert.deepEqual(existsSync(path.join(dataDir, 'models')) ? readdirSync(path.join(dataDir, 'models')) : [], []);
  assert.deepEqual(registered(dataDir).models, []);

  for (const args of [[], [tinyGpt2, '--to', dataDir, '--activate'], [tinyGpt2, '--to', dataDir, '--data-dir', dataDir], [tinyGpt2, '--force'], [tinyGpt2, '--data-dir', '']]) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
});

test('through the inkling binary: the command registers the model and prints its id and name', () => {
  const dataDir = tmpDir('import-bin');
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'inkling.mjs'), 'import', tinyGpt2, '--data-dir', dataDir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^id: +tiny-gpt2$/m);
  assert.match(r.stdout, /^name: +tiny-gpt2$/m);
  assert.deepEqual(registered(dataDir).models.map((m) => m.id), ['tiny-gpt2']);
});
