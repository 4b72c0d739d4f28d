// Loading GPT-2 folders in the layouts Hugging Face produces, and refusing broken ones by name.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { completeGPT2Config, type ParsedGPT2Config } from '../../worker/model/config.js';
import { ModelFormatError, type ModelFormatErrorCode } from '../../worker/model/errors.js';
import { assertFitsBackend, loadModel } from '../../worker/model/load.js';
import { GPT2Model } from '../../worker/model/gpt2.js';
import { createRandomModel, randomWeights } from '../../worker/model/random.js';
import { paramsFromWeights } from '../../worker/model/weights.js';
import type { TensorToWrite } from '../../worker/model/safetensors.js';
import type { LanguageModel } from '../../worker/model/types.js';
import { maxAbsDiff, tempDir, useWasm, writeModelFolder } from './helpers.js';

const config = completeGPT2Config({ vocabSize: 50, nPositions: 16, nEmbd: 8, nLayer: 2, nHead: 2 });
const SEED = 5;
const prompt = [3, 1, 4, 1, 5, 9, 2, 6];
const root = tempDir('load');
let folderCount = 0;
let expected: Float32Array;

function logitsOf(model: LanguageModel): Float32Array {
  const cache = model.createCache(1);
  const logits = model.forward([prompt], cache, { allPositions: true });
  const data = logits.dataSync() as Float32Array;
  logits.dispose();
  cache.dispose();
  return data;
}

async function folder(
  tensors: Record<string, TensorToWrite>,
  overrides: Record<string, unknown> = {},
  cfg: ParsedGPT2Config = config,
): Promise<string> {
  const dir = path.join(root, `m${folderCount++}`);
  mkdirSync(dir);
  return writeModelFolder(dir, cfg, tensors, overrides);
}

async function loaded(dir: string): Promise<Float32Array> {
  const model = await loadModel(dir);
  const data = logitsOf(model);
  model.dispose();
  return data;
}

async function refuses(dir: string, code: ModelFormatErrorCode, mentions: RegExp): Promise<void> {
  await assert.rejects(loadModel(dir), (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, mentions);
    return true;
  });
  assert.equal(tf.memory().numTensors, 0, 'a failed load leaves no tensors behind');
}

const weights = () => randomWeights(config, SEED);
const renamed = (tensors: Record<string, TensorToWrite>, rename: (name: string) => string) =>
  Object.fromEntries(Object.entries(tensors).map(([name, t]) => [rename(name), t]));
const scaled = (t: TensorToWrite, factor: number): TensorToWrite => ({ ...t, data: t.data.map((v) => v * factor) });

before(async () => {
  await useWasm();
  const model = createRandomModel(config, SEED);
  expected = logitsOf(model);
  model.dispose();
});

test('a folder loads to the same model as the weights it was written from', async () => {
  const dir = await folder(weights());
  const model = await loadModel(dir);
  assert.deepEqual(model.config, config);
  // Only the checkpoint's numbers: the tied output layer is wte itself, read transposed in place.
  assert.equal(model.weightBytes, 4 * [...Object.values(weights())].reduce((n, t) => n + t.data.length, 0));
  assert.deepEqual(logitsOf(model), expected);
  model.dispose();
});

test('names with the transformer. prefix load the same', async () => {
  assert.deepEqual(await loaded(await folder(renamed(weights(), (n) => `transformer.${n}`))), expected);
});

test('attn.bias and attn.masked_bias buffers are ignored, whatever their dtype', async () => {
  const tensors = weights();
  for (const i of [0, 1]) {
    tensors[`h.${i}.attn.bias`] = { dtype: 'F32', shape: [1, 1, 16, 16], data: new Float32Array(256).fill(1) };
    tensors[`h.${i}.attn.masked_bias`] = { dtype: 'F16', shape: [], data: new Float32Array([-1e4]) };
  }
  assert.deepEqual(await loaded(await folder(tensors)), expected);
});

test('a tied model ignores lm_head.weight; an untied one uses it', async () => {
  const withCopy = weights();
  withCopy['lm_head.weight'] = scaled(withCopy['wte.weight'], 3);
  assert.deepEqual(await loaded(await folder(withCopy)), expected, 'tie_word_embeddings true: wte is the output layer');

  const untied = await loaded(await folder(withCopy, { tie_word_embeddings: false }));
  assert.ok(maxAbsDiff(untied, expected.map((v) => 3 * v)) < 1e-5, 'logits are linear in the output layer');

  await refuses(await folder(weights(), { tie_word_embeddings: false }), 'missing_tensor', /'lm_head\.weight' is missing/);
});

test('a missing tensor is named', async () => {
  const tensors = weights();
  delete tensors['h.1.mlp.c_fc.bias'];
  await refuses(await folder(tensors), 'missing_tensor', /'h\.1\.mlp\.c_fc\.bias' is missing/);
});

test('a tensor of the wrong shape is named with the shape the config needs', async () => {
  const tensors = weights();
  tensors['h.0.attn.c_attn.weight'] = { dtype: 'F32', shape: [24, 8], data: tensors['h.0.attn.c_attn.weight'].data };
  await refuses(await folder(tensors), 'shape_mismatch', /'h\.0\.attn\.c_attn\.weight' has shape \[24, 8\], but config\.json .* needs \[8, 24\]/);
});

test('a config that does not match the tensors', async () => {
  await refuses(await folder(weights(), { n_layer: 3 }), 'config_mismatch', /n_layer = 3, but the file has no tensors for layer 2/);
  await refuses(await folder(weights(), { n_layer: 1 }), 'config_mismatch', /'h\.1\.ln_1\.weight' of layer 1, but config\.json says n_layer = 1/);
  await refuses(await folder(weights(), { n_embd: 16, n_head: 2 }), 'shape_mismatch', /'wte\.weight' has shape \[50, 8\].*n_embd 16/);
  await refuses(await folder(weights(), { vocab_size: 51 }), 'shape_mismatch', /'wte\.weight'.*vocab_size 51/);
});

test('weights stored as integers are refused by name', async () => {
  const dir = await folder(weights());
  const tensors = weights();
  // Written by hand: writeSafetensors only writes floats.
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: name === 'wpe.weight' ? 'I32' : 'F32', shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path.join(dir, 'model.safetensors'), Buffer.concat([prefix, json, ...parts]));
  await refuses(dir, 'unsupported_dtype', /'wpe\.weight' has dtype I32/);
});

test('folders that are not GPT-2 or miss a file', async () => {
  await refuses(await folder(weights(), { model_type: 'llama' }), 'not_gpt2', /'llama'/);

  const noConfig = await folder(weights());
  rmSync(path.join(noConfig, 'config.json'));
  await refuses(noConfig, 'missing_file', /config\.json: file not found/);

  const badJson = await folder(weights());
  writeFileSync(path.join(badJson, 'config.json'), '{"n_embd": 8,');
  await refuses(badJson, 'invalid_config', /config\.json: not valid JSON/);

  const noWeights = await folder(weights());
  rmSync(path.join(noWeights, 'model.safetensors'));
  await refuses(noWeights, 'missing_file', /model\.safetensors: file not found$/);
  writeFileSync(path.join(noWeights, 'pytorch_model.bin'), 'pickle');
  await refuses(noWeights, 'missing_file', /convert it to safetensors/);
});

test('a model too big for the WebAssembly backend is refused before loading', () => {
  assert.doesNotThrow(() => assertFitsBackend(completeGPT2Config({})));
  assert.doesNotThrow(() => assertFitsBackend(completeGPT2Config({ nEmbd: 1024, nHead: 16, nLayer: 24 })));
  // GPT-2 large (774M, 3.1 GB): our kernels keep no copies of its matrices, so it fits in wasm's 4 GB.
  assert.doesNotThrow(() => assertFitsBackend(completeGPT2Config({ nEmbd: 1280, nHead: 20, nLayer: 36 })));
  assert.throws(
    () => assertFitsBackend(completeGPT2Config({ nEmbd: 1600, nHead: 25, nLayer: 48 })),
    (e: unknown) => e instanceof ModelFormatError && e.code === 'too_large_for_backend' && /1558M parameters/.test(e.message),
  );
});

test('weights read straight into the backend give the same model, and a read failing midway frees what it filled', () => {
  const values = weights();
  const read = (name: string) => values[name].data as Float32Array;
  const readInto = (name: string, out: Float32Array) => out.set(read(name));
  const viaArrays = new GPT2Model(config, paramsFromWeights(config, read));
  const direct = new GPT2Model(config, paramsFromWeights(config, read, { readInto }));
  assert.deepEqual(logitsOf(direct), logitsOf(viaArrays));
  viaArrays.dispose();
  direct.dispose();

  const buffers = tf.backend().numDataIds();
  let reads = 0;
  const failing = (name: string, out: Float32Array) => {
    if (++reads === 5) throw new ModelFormatError('truncated_file', 'model.safetensors: file ended early');
    readInto(name, out);
  };
  assert.throws(() => paramsFromWeights(config, read, { readInto: failing }), /file ended early/);
  assert.equal(tf.memory().numTensors, 0);
  assert.equal(tf.backend().numDataIds(), buffers, 'no backend buffer is left behind');
});
