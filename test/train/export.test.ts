// Merging adapters and exporting: the folder loads with loadModel and computes what the trained model
// computed, under GPT-2's own tensor names and layout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../../worker/model/load.js';
import { SafetensorsReader } from '../../worker/model/safetensors.js';
import { gpt2TensorShapes } from '../../worker/model/weights.js';
import { evaluateLoss } from '../../worker/train/evaluate.js';
import { exportTrainedModel } from '../../worker/train/export.js';
import { forwardLogits } from '../../worker/train/forward.js';
import { registerGradients } from '../../worker/train/gradients.js';
import { initLoraTensors, loraSet, type LoraConfig } from '../../worker/train/lora.js';
import { modelFromParams, paramMapOf } from '../../worker/train/params.js';
import { TrainedWeights } from '../../worker/train/weights.js';
import { loadTiny, maxAbsDiff, tempDir, tinyGpt2, useWasm, type TestModel } from './helpers.js';

let tiny: TestModel;
before(async () => {
  await useWasm();
  registerGradients();
  tiny = await loadTiny();
});
after(() => tiny.dispose());

const LORA: LoraConfig = { rank: 4, alpha: 8, dropout: 0, targets: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] };
const PROMPT = Int32Array.from([15496, 11, 616, 3290, 318, 257, 1332]);

/** Adapters as after some training: B no longer zero. */
function trainedAdapters(): TrainedWeights {
  const tensors = initLoraTensors(tiny.config, LORA, 11);
  for (const [name, t] of tensors) {
    if (name.endsWith('lora_b')) {
      tensors.set(name, tf.randomNormal(t.shape, 0, 0.3, 'float32', name.length));
      t.dispose();
    }
  }
  return new TrainedWeights('lora', LORA, tensors);
}

test('merged weights compute what base + adapters compute', async () => {
  const weights = trainedAdapters();
  const adapted = forwardLogits(tiny.params, PROMPT, 1, { config: tiny.config, lora: loraSet(weights.tensors, LORA) });
  const base = forwardLogits(tiny.params, PROMPT, 1, { config: tiny.config });
  const merged = await weights.withModelParams(tiny.params, (params) => forwardLogits(params, PROMPT, 1, { config: tiny.config }));
  assert.ok(maxAbsDiff(adapted.dataSync(), base.dataSync()) > 1e-2, 'the adapters change the model');
  assert.ok(maxAbsDiff(adapted.dataSync(), merged.dataSync()) < 1e-5);
  tf.dispose([adapted, base, merged]);
  weights.dispose();
});

test('the exported folder loads with loadModel and gives the merged model logits and held-out loss', async () => {
  const before = tf.memory().numTensors;
  const weights = trainedAdapters();
  const dir = path.join(tempDir('export'), 'model');
  await exportTrainedModel(dir, tiny.config, tiny.params, weights, { tokenizerFrom: tinyGpt2 });

  const reader = SafetensorsReader.open(path.join(dir, 'model.safetensors'));
  assert.deepEqual([...reader.tensors.keys()].sort(), [...gpt2TensorShapes(tiny.config).keys()].sort(), 'GPT-2 names, no lm_head, no adapters');
  assert.deepEqual(reader.info('h.0.mlp.c_fc.weight').shape, [32, 128], 'Conv1D layout [in, out]');
  assert.equal(reader.metadata.format, 'pt', 'transformers needs the format metadata');
  reader.close();
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'gpt2');
  assert.equal(config.n_embd, 32);

  const loaded = await loadModel(dir);
  const cache = loaded.createCache(1);
  const fromFolder = loaded.forward([[...PROMPT]], cache, { allPositions: true });
  const expected = await weights.withModelParams(tiny.params, (params) => forwardLogits(params, PROMPT, 1, { config: tiny.config }));
  assert.ok(maxAbsDiff(fromFolder.dataSync(), expected.dataSync()) < 1e-4);

  const heldOut = { heldOut: Int32Array.from([...PROMPT, 50256, 464, 3290]), heldOutBlocks: [{ start: 0, length: 10 }] };
  const inMemory = await weights.withModelParams(tiny.params, (params) => evaluateLoss(params, tiny.config, heldOut));
  const reloaded = await evaluateLoss(paramMapOf(loaded.params), loaded.config, heldOut);
  assert.ok(Math.abs((inMemory as number) - (reloaded as number)) < 1e-5);

  tf.dispose([fromFolder, expected]);
  cache.dispose();
  loaded.dispose();
  weights.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('modelFromParams gives an inference model that matches the training forward', async () => {
  const model = modelFromParams(tiny.config, tiny.params);
  const cache = model.createCache(1);
  const logits = model.forward([[...PROMPT]], cache, { allPositions: true });
  const expected = forwardLogits(tiny.params, PROMPT, 1, { config: tiny.config });
  assert.ok(maxAbsDiff(logits.dataSync(), expected.dataSync()) < 1e-5);
  tf.dispose([logits, expected]);
  cache.dispose();
  model.dispose();
});
