// Importing GPT-2 checkpoints: validation from headers only, clear refusals, and the copy.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/model/load.js';
import { writeSafetensors, type TensorToWrite } from '../../worker/model/safetensors.js';
import { ModelFormatError } from '../../worker/model/errors.js';
import { gpt2TensorShapes } from '../../worker/model/weights.js';
import { completeGPT2Config } from '../../worker/model/config.js';
import { copyImport, inspectImport } from '../../main/models/import.js';
import { importCommand } from '../../main/cli/import.js';
import { sharedDir, tempDir, tinyGpt2, useWasm } from '../train/helpers.js';

before(useWasm);

function folderWith(files: Record<string, string | null>, from = tinyGpt2): string {
  const dir = tempDir('import-src');
  for (const [name, contents] of Object.entries(files)) {
    if (contents === null) copyFileSync(path.join(from, name), path.join(dir, name));
    else writeFileSync(path.join(dir, name), contents);
  }
  return dir;
}

async function refusal(source: string, code: string, message: RegExp): Promise<void> {
  await assert.rejects(inspectImport(source), (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

test('the tiny fixture folder is described from its headers and copied into a loadable model', async () => {
  const s = await inspectImport(tinyGpt2);
  assert.equal(s.kind, 'folder');
  assert.equal(s.config.nLayer, 2);
  assert.equal(s.config.nEmbd, 32);
  const expected = [...gpt2TensorShapes(s.config).values()].reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0);
  assert.equal(s.parameters, expected);
  assert.deepEqual(s.dtypes, ['F32']);
  assert.ok(s.memoryBytes > 4 * s.parameters); // weights plus the copies the backend keeps
  assert.deepEqual(s.tokenizerFiles, []);
  assert.deepEqual(s.files.map((f) => f.name), ['config.json', 'model.safetensors']);
  assert.equal(s.releasedAs, null);

  const models = tempDir('import-models');
  const progress: number[] = [];
  await copyImport(s, path.join(models, 'tiny'), { onProgress: (copied) => progress.push(copied) });
  assert.equal(progress[progress.length - 1], s.sizeBytes);
  assert.deepEqual(readdirSync(models), ['tiny']);
  const model = await loadModel(path.join(models, 'tiny'));
  model.dispose();
  await assert.rejects(copyImport(s, path.join(models, 'tiny')), /already exists/);
  assert.deepEqual((await inspectImport(path.join(sharedDir, 'fixtures', 'tiny-gpt2-f16'))).dtypes, ['F16']);
});

test('a lone .safetensors file of a released width gets its config from the tensor shapes', async () => {
  const config = completeGPT2Config({ vocabSize: 64, nPositions: 8, nEmbd: 768, nHead: 12, nLayer: 1 });
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, shape] of gpt2TensorShapes(config)) {
    tensors[`transformer.${name}`] = { dtype: 'F16', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
  }
  const dir = tempDir('import-file');
  const file = path.join(dir, 'weights.safetensors');
  await writeSafetensors(file, tensors);
  const s = await inspectImport(file);
  assert.equal(s.kind, 'file');
  assert.equal(s.config.nHead, 12);
  assert.equal(s.config.vocabSize, 64);
  assert.equal(s.config.nInner, 3072);
  assert.equal(s.suggestedName, 'weights');
  const models = tempDir('import-models');
  await copyImport(s, path.join(models, 'w'));
  assert.equal(JSON.parse(readFileSync(path.join(models, 'w', 'config.json'), 'utf8')).n_head, 12);

  // The tiny fixture's weights alone: width 32 is no released size, so the heads are unknown.
  const lone = path.join(tempDir('import-lone'), 'model.safetensors');
  copyFileSync(path.join(tinyGpt2, 'model.safetensors'), lone);
  await refusal(lone, 'invalid_config', /number of heads is unknown/);
});

test('anything that is not a GPT-2 checkpoint is refused with a clear error', async () => {
  const config = JSON.parse(readFileSync(path.join(tinyGpt2, 'config.json'), 'utf8'));
  await refusal(folderWith({ 'config.json': JSON.stringify({ model_type: 'llama' }), 'model.safetensors': null }), 'not_gpt2', /'llama' model/);
  await refusal(folderWith({ 'model.safetensors': null }), 'missing_file', /no config\.json/);
  await refusal(folderWith({ 'config.json': null, 'pytorch_model.bin': 'x' }), 'missing_file', /pytorch_model\.bin/);
  await refusal(folderWith({ 'config.json': JSON.stringify({ ...config, n_embd: 64 }), 'model.safetensors': null }), 'shape_mismatch', /wte\.weight/);
  await refusal(folderWith({ 'config.json': JSON.stringify({ ...config, n_layer: 3 }), 'model.safetensors': null }), 'missing_tensor', /h\.2\./);
  await refusal(folderWith({ 'config.json': JSON.stringify({ ...config, vocab_size: 1000 }), 'model.safetensors': null }), 'shape_mismatch', /wte/);
  await refusal(folderWith({ 'config.json': null, 'model.safetensors': 'not a safetensors file at all' }), 'bad_header_length', /not safetensors/);
  const bin = path.join(tempDir('import-bin'), 'pytorch_model.bin');
  writeFileSync(bin, 'x');
  await refusal(bin, 'missing_file', /convert it to safetensors/);
  await refusal(path.join(tempDir('import-none'), 'nothing'), 'missing_file', /no such file/);
  // Tokenizer files that do not load are refused too.
  await refusal(folderWith({ 'config.json': null, 'model.safetensors': null, 'vocab.json': '{}', 'merges.txt': '' }), 'invalid_config', /tokenizer cannot be used/);
});

test('inkling import validates, copies, and copies nothing on failure', async () => {
  const models = tempDir('import-cli');
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
  assert.equal(await importCommand([tinyGpt2, '--to', models, '--json'], io), 0, err.join(''));
  const json = JSON.parse(out.join(''));
  assert.equal(json.imported, true);
  assert.equal(json.target, path.join(models, 'tiny-gpt2'));
  assert.ok(existsSync(path.join(models, 'tiny-gpt2', 'model.safetensors')));
  assert.ok(existsSync(path.join(models, 'tiny-gpt2', 'inkling-source.json')));

  assert.equal(await importCommand([tinyGpt2, '--to', models], io), 1);
  assert.match(err.join(''), /already exists/);
  assert.equal(await importCommand([tinyGpt2, '--to', models, '--force', '--name', 'again'], io), 0);

  const bad = folderWith({ 'config.json': JSON.stringify({ model_type: 'bert' }), 'model.safetensors': null });
  assert.equal(await importCommand([bad, '--to', models], io), 3);
  assert.match(err.join(''), /only GPT-2/);
  assert.deepEqual(readdirSync(models).sort(), ['again', 'tiny-gpt2']);
  assert.equal(await importCommand([], io), 2);
});
