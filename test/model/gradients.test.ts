// gpt2Forward is the training forward too: gradients must flow through it on wasm, including the embedding
// lookup (whose gather gradient wasm lacks) and LoRA adapters.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { completeGPT2Config } from '../../worker/model/config.js';
import { gpt2Forward, paramTensors, type GPT2Params } from '../../worker/model/gpt2.js';
import { createRandomModel } from '../../worker/model/random.js';
import { useWasm } from './helpers.js';

// tfjs-core's Node bundle registers no op gradients (the @tensorflow/tfjs umbrella does). Its ESM build has
// them, but with import paths Node's ESM loader refuses; tsx's require() transpiles it. The registry is
// global, so this registers them for our copy of tfjs-core too.
createRequire(import.meta.url)('@tensorflow/tfjs-core/dist/register_all_gradients.js');

before(useWasm);

const config = completeGPT2Config({ vocabSize: 29, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2 });
// Token 4 appears twice: its embedding gradient must be the sum of both uses.
const tokens = [[4, 9, 4, 1]];

/** A scalar that depends on every logit. */
function loss(params: GPT2Params, probe: tf.Tensor): tf.Scalar {
  const { logits } = gpt2Forward(params, config, tf.tensor2d(tokens, [1, 4], 'int32'), null, { allPositions: true });
  return tf.sum(tf.mul(logits, probe));
}

const modelForConfig = () => createRandomModel(config, 3);

test('the embedding gradient (wasm-safe lookup) matches finite differences, repeated ids summed', () => {
  const model = modelForConfig();
  const probe = tf.randomNormal([1, 4, config.vocabSize], 0, 1, 'float32', 5);
  const { wte } = model.params;
  // A separate output layer, so that wte is only the input embedding here.
  const lmHead = tf.transpose(wte) as tf.Tensor2D;

  const gradient = tf.grad((table: tf.Tensor) => loss({ ...model.params, wte: table as tf.Tensor2D, lmHead }, probe))(wte);
  const g = gradient.arraySync() as number[][];
  assert.ok(g[0].every((v) => v === 0), 'an unused token gets no gradient');
  assert.ok(g[4].some((v) => Math.abs(v) > 1e-3), 'a used token gets one');

  const values = wte.arraySync() as number[][];
  const lossWith = (row: number, col: number, delta: number) =>
    tf.tidy(() => {
      const changed = values.map((r) => [...r]);
      changed[row][col] += delta;
      return loss({ ...model.params, wte: tf.tensor2d(changed), lmHead }, probe).dataSync()[0];
    });
  const eps = 1e-2;
  for (const [row, col] of [[4, 0], [4, 5], [9, 2], [1, 7]]) {
    const numeric = (lossWith(row, col, eps) - lossWith(row, col, -eps)) / (2 * eps);
    assert.ok(Math.abs(numeric - g[row][col]) < 2e-3 + 0.02 * Math.abs(numeric), `wte[${row}][${col}]: ${g[row][col]} vs ${numeric}`);
  }
  tf.dispose([gradient, probe, lmHead]);
  model.dispose();
});

test('gradients reach every parameter with a tied output layer, and LoRA adapters train', () => {
  const model = modelForConfig();
  const probe = tf.randomNormal([1, 4, config.vocabSize], 0, 1, 'float32', 6);
  const tied = model.params;
  assert.equal(tied.lmHead, undefined, 'a tied output layer is wte itself: no transposed copy where our kernels multiply');
  const cAttn = tied.blocks[0].attn.cAttn;
  const a = tf.randomNormal([8, 2], 0, 0.5, 'float32', 7) as tf.Tensor2D;
  const zeroB = tf.zeros([2, 24]) as tf.Tensor2D;
  const withLora: GPT2Params = {
    ...tied,
    blocks: [{ ...tied.blocks[0], attn: { ...tied.blocks[0].attn, cAttn: { ...cAttn, lora: { a, b: zeroB, scale: 2 } } } }, tied.blocks[1]],
  };

  // A zero B leaves the model unchanged, as LoRA starts out.
  const base = loss(tied, probe);
  const adapted = loss(withLora, probe);
  assert.ok(Math.abs(base.dataSync()[0] - adapted.dataSync()[0]) < 1e-5);

  const inputs = [...paramTensors(tied), zeroB];
  const grads = tf.grads((...xs: tf.Tensor[]) => {
    const rebuilt = rebuild(tied, xs);
    rebuilt.blocks[0] = { ...rebuilt.blocks[0], attn: { ...rebuilt.blocks[0].attn, cAttn: { ...rebuilt.blocks[0].attn.cAttn, lora: { a, b: xs[xs.length - 1] as tf.Tensor2D, scale: 2 } } } };
    return loss(rebuilt, probe);
  })(inputs);
  grads.forEach((g, i) => {
    const data = g.dataSync();
    assert.ok(data.every(Number.isFinite), `gradient ${i} is finite`);
    assert.ok(data.some((v) => v !== 0), `gradient ${i} (shape ${g.shape}) is not all zero`);
  });
  tf.dispose([...grads, base, adapted, probe, a, zeroB]);
  model.dispose();
});

/** The params with their tensors replaced, in paramTensors order. */
function rebuild(params: GPT2Params, xs: tf.Tensor[]): GPT2Params {
  let i = 0;
  const next = <T extends tf.Tensor>() => xs[i++] as T;
  const ln = () => ({ weight: next<tf.Tensor1D>(), bias: next<tf.Tensor1D>() });
  const linear = () => ({ weight: next<tf.Tensor2D>(), bias: next<tf.Tensor1D>() });
  const wte = next<tf.Tensor2D>();
  const wpe = next<tf.Tensor2D>();
  const blocks = params.blocks.map(() => {
    const ln1 = ln();
    const cAttn = linear();
    const cProj = linear();
    const ln2 = ln();
    const cFc = linear();
    const mlpProj = linear();
    return { ln1, attn: { cAttn, cProj }, ln2, mlp: { cFc, cProj: mlpProj } };
  });
  return { wte, wpe, blocks, lnF: ln() };
}
