/**
 * GPT-2 in training mode: a whole batch `[B, T]` at once, no key/value cache, optional dropout and LoRA
 * adapters, every op differentiable on the wasm backend, and fast there.
 *
 * worker/model's `gpt2Forward` is built for the decode loop (a cache, no dropout). Training needs dropout,
 * a flat parameter map an optimizer and a checkpoint can walk, and gradients that avoid two wasm gaps:
 * - the gradient of `gather` needs UnsortedSegmentSum, which wasm lacks (STACK.md);
 * - wasm sends only untransposed 2-D products to its fast kernel (XNNPACK); `matMul`'s own gradient
 *   (dy·Wᵀ, xᵀ·dy) takes the naive path and is 10–30× slower. So linears and the output layer have
 *   written-out gradients that use untransposed products only: with a frozen weight, a transposed copy
 *   made once (`frozenTransposes`); with a trained one, transposes of the (smaller) activations.
 * The tests hold this forward to the fixture's reference logits, so both compute the same function.
 *
 * Parameters are a flat map under Hugging Face's GPT-2 names without a prefix (`wte.weight`,
 * `h.0.attn.c_attn.weight`, ...), Conv1D weights `[in, out]`, the output layer tied to `wte.weight`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from '../model/types.js';
import { gpt2TensorShapes } from '../model/weights.js';
import type { Batch } from './data.js';
import type { LoraSet } from './lora.js';
import type { TrainingRng } from './rng.js';

export type ParamMap = Readonly<Record<string, tf.Tensor>>;

export interface ForwardContext {
  config: GPT2Config;
  /** Adapters added beside the linears they name (`h.0.attn.c_attn`, ...). */
  lora?: LoraSet;
  /**
   * Weights that do not train, by parameter name, each with its transposed copy or null (see
   * `frozenWeights`). A weight listed here gets no gradient; one not listed is treated as trained.
   */
  frozen?: ReadonlyMap<string, tf.Tensor | null>;
  /** Dropout on embeddings, attention weights and residual branches (GPT-2's `*_pdrop`); 0 for evaluation. */
  dropout?: number;
  /** Dropout on the input of each adapter (PEFT's `lora_dropout`); 0 for evaluation. */
  loraDropout?: number;
  /** Draws the dropout masks' seeds; needed when any dropout is above 0. */
  rng?: TrainingRng;
}

/** Throws naming the first parameter that is missing or has the wrong shape. */
export function checkParams(params: ParamMap, config: GPT2Config): void {
  for (const [name, shape] of gpt2TensorShapes(config)) {
    const t = params[name];
    if (t === undefined) throw new Error(`the model has no parameter "${name}"`);
    if (!tf.util.arraysEqual(t.shape, shape)) throw new Error(`parameter "${name}" has shape [${t.shape}], expected [${shape}]`);
  }
}

/**
 * Marks every matrix of a model whose weights stay fixed (LoRA) as frozen. With `transposes`, each gets a
 * transposed copy, so its backward product is a plain one with a weight XNNPACK has already packed — the
 * fastest path on wasm, for the memory of a second copy of the weights.
 */
export function frozenWeights(params: ParamMap, transposes: boolean): Map<string, tf.Tensor | null> {
  const out = new Map<string, tf.Tensor | null>();
  for (const [name, t] of Object.entries(params)) {
    if (t.rank === 2 && name !== 'wpe.weight') out.set(name, transposes ? tf.transpose(t) : null);
  }
  return out;
}

/** Logits `[B·T, V]` for `inputs` (`B` rows of `T` tokens, row after row). */
export function forwardLogits(params: ParamMap, inputs: Int32Array, batch: number, ctx: ForwardContext): tf.Tensor2D {
  return tf.tidy(() =>
    outputLayer(forwardHidden(params, inputs, batch, ctx), params['wte.weight'] as tf.Tensor2D, ctx.frozen?.get('wte.weight') as tf.Tensor2D | null | undefined),
  );
}

/**
 * The final hidden states `[B·T, C]` (after `ln_f`, before the output layer) for `inputs`: what a
 * classification head reads (worker/classify).
 */
export function forwardHidden(params: ParamMap, inputs: Int32Array, batch: number, ctx: ForwardContext): tf.Tensor2D {
  const { config } = ctx;
  const T = inputs.length / batch;
  if (!Number.isInteger(T) || T < 1) throw new Error(`forwardLogits: ${inputs.length} tokens do not make ${batch} equal rows`);
  if (T > config.nPositions) throw new RangeError(`a block of ${T} tokens is longer than the model's ${config.nPositions} positions`);
  return tf.tidy(() => {
    const wte = params['wte.weight'] as tf.Tensor2D;
    const positions = tf.slice(params['wpe.weight'], [0, 0], [T, config.nEmbd]);
    const embedded = tf.add(tf.reshape(embed(wte, inputs), [batch, T, config.nEmbd]), positions);
    let x = tf.reshape(dropout(embedded, ctx.dropout, ctx), [batch * T, config.nEmbd]) as tf.Tensor2D;
    const mask = causalMask(T);
    for (let layer = 0; layer < config.nLayer; layer++) {
      const h = `h.${layer}`;
      const a = attention(layerNorm(x, params, `${h}.ln_1`, config), params, h, layer, batch, T, mask, ctx);
      x = tf.add(x, dropout(a, ctx.dropout, ctx)) as tf.Tensor2D;
      const m = mlp(layerNorm(x, params, `${h}.ln_2`, config), params, h, ctx);
      x = tf.add(x, dropout(m, ctx.dropout, ctx)) as tf.Tensor2D;
    }
    return layerNorm(x, params, 'ln_f', config);
  });
}

/** Mean next-token cross-entropy over every target of the batch. */
export function batchLoss(params: ParamMap, batch: Batch, ctx: ForwardContext): tf.Scalar {
  return tf.tidy(() => crossEntropy(forwardLogits(params, batch.inputs, batch.batch, ctx), batch.targets));
}

/**
 * Mean cross-entropy of `logits` [N, V] against `targets`, with the gradient written out
 * (softmax − one-hot) / N: it needs no gather gradient, and keeps one [N, V] tensor for the backward pass.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  const n = targets.length;
  const loss = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const x = inputs[0] as tf.Tensor2D;
    const save = inputs[1] as tf.GradSaveFunc;
    const shifted = tf.sub(x, tf.max(x, 1, true));
    const logSumExp = tf.log(tf.sum(tf.exp(shifted), 1));
    const picked = tf.sum(tf.mul(shifted, oneHot(targets, x.shape[1])), 1);
    save([x]);
    return {
      value: tf.div(tf.sum(tf.sub(logSumExp, picked)), n) as tf.Scalar,
      gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) =>
        tf.mul(tf.sub(tf.softmax(saved[0]), oneHot(targets, x.shape[1])), tf.div(dy, n)),
    };
  });
  return loss(logits) as tf.Scalar;
}

/** Float one-hot rows. (Built as int32 and cast: wasm's OneHot kernel asked for float32 writes int32 bits.) */
function oneHot(ids: Int32Array, depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(ids, 'int32'), depth), 'float32') as tf.Tensor2D);
}

/**
 * Embedding lookup. Its gradient scatters the rows of dy back (summing repeated ids) instead of gather's
 * UnsortedSegmentSum; the ids are rebuilt in the backward pass, after the forward's tidy has freed its own.
 */
function embed(table: tf.Tensor2D, ids: Int32Array): tf.Tensor2D {
  const lookup = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const t = inputs[0] as tf.Tensor2D;
    return {
      value: tf.gather(t, tf.tensor1d(ids, 'int32')),
      gradFunc: (dy: tf.Tensor) => tf.scatterND(tf.tensor2d(ids, [ids.length, 1], 'int32'), dy, t.shape),
    };
  });
  return lookup(table) as tf.Tensor2D;
}

/**
 * `x · W + b`, differentiated with untransposed products only (see the module comment). `wT`: a frozen
 * weight's transposed copy; null: frozen, no copy; undefined: trained.
 */
function dense(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, wT: tf.Tensor2D | null | undefined): tf.Tensor2D {
  if (wT !== undefined) {
    const op = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => ({
      value: tf.fused.matMul({ a: inputs[0] as tf.Tensor2D, b: w, bias: b }),
      gradFunc: (dy: tf.Tensor) => (wT === null ? inputGradient(dy as tf.Tensor2D, w) : tf.matMul(dy as tf.Tensor2D, wT)),
    }));
    return op(x) as tf.Tensor2D;
  }
  const op = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xs, ws, bs] = inputs as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    (inputs[3] as tf.GradSaveFunc)([xs, ws]);
    return {
      value: tf.fused.matMul({ a: xs, b: ws, bias: bs }),
      gradFunc: (dy: tf.Tensor, [xSaved, wSaved]: tf.Tensor[]) => {
        const dy2 = dy as tf.Tensor2D;
        return [inputGradient(dy2, wSaved as tf.Tensor2D), tf.matMul(tf.transpose(xSaved as tf.Tensor2D), dy2), tf.sum(dy2, 0)];
      },
    };
  });
  return op(x, w, b) as tf.Tensor2D;
}

/** dy · Wᵀ as (W · dyᵀ)ᵀ: transposing activations is cheaper than transposing W when B·T < in·out/(in+out). */
function inputGradient(dy: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return tf.transpose(tf.matMul(w, tf.transpose(dy))) as tf.Tensor2D;
}

/** Logits `x · wteᵀ` (the output layer tied to the embedding). */
function outputLayer(x: tf.Tensor2D, wte: tf.Tensor2D, wteT: tf.Tensor2D | null | undefined): tf.Tensor2D {
  if (wteT !== undefined) {
    const op = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => ({
      value: tf.matMul(inputs[0] as tf.Tensor2D, wteT ?? tf.transpose(wte)),
      gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, wte),
    }));
    return op(x) as tf.Tensor2D;
  }
  const op = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xs, ws] = inputs as [tf.Tensor2D, tf.Tensor2D];
    (inputs[2] as tf.GradSaveFunc)([xs, ws]);
    return {
      value: tf.matMul(xs, tf.transpose(ws)),
      gradFunc: (dy: tf.Tensor, [xSaved, wSaved]: tf.Tensor[]) => {
        const dy2 = dy as tf.Tensor2D;
        return [tf.matMul(dy2, wSaved as tf.Tensor2D), tf.matMul(tf.transpose(dy2), xSaved as tf.Tensor2D)];
      },
    };
  });
  return op(x, wte) as tf.Tensor2D;
}

function linear(x: tf.Tensor2D, params: ParamMap, name: string, ctx: ForwardContext): tf.Tensor2D {
  const weight = `${name}.weight`;
  const y = dense(x, params[weight] as tf.Tensor2D, params[`${name}.bias`] as tf.Tensor1D, ctx.frozen?.get(weight) as tf.Tensor2D | null | undefined);
  const adapter = ctx.lora?.get(name);
  if (adapter === undefined) return y;
  // Rank-r products are small: tfjs's own matMul gradient is fine for them.
  const input = dropout(x, ctx.loraDropout, ctx) as tf.Tensor2D;
  const update = tf.matMul(tf.matMul(input, adapter.a as tf.Tensor2D), adapter.b as tf.Tensor2D);
  return tf.add(y, tf.mul(update, adapter.scale)) as tf.Tensor2D;
}

function layerNorm(x: tf.Tensor2D, params: ParamMap, name: string, config: GPT2Config): tf.Tensor2D {
  const mean = tf.mean(x, 1, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), 1, true);
  const normed = tf.mul(centred, tf.rsqrt(tf.add(variance, config.layerNormEpsilon)));
  return tf.add(tf.mul(normed, params[`${name}.weight`]), params[`${name}.bias`]) as tf.Tensor2D;
}

function attention(
  x: tf.Tensor2D,
  params: ParamMap,
  h: string,
  layer: number,
  B: number,
  T: number,
  mask: tf.Tensor2D,
  ctx: ForwardContext,
): tf.Tensor2D {
  const { nEmbd: C, nHead: H } = ctx.config;
  const D = C / H;
  const qkv = linear(x, params, `${h}.attn.c_attn`, ctx);
  const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, H, D]), [0, 2, 1, 3]);
  const [q, k, v] = tf.split(qkv, 3, 1).map(heads);
  let scale = 1;
  if (ctx.config.scaleAttnWeights) scale /= Math.sqrt(D);
  if (ctx.config.scaleAttnByInverseLayerIdx) scale /= layer + 1;
  const scores = tf.add(tf.matMul(tf.mul(q, scale), k, false, true), mask);
  const weights = dropout(tf.softmax(scores), ctx.dropout, ctx);
  const y = tf.reshape(tf.transpose(tf.matMul(weights, v), [0, 2, 1, 3]), [B * T, C]) as tf.Tensor2D;
  return linear(y, params, `${h}.attn.c_proj`, ctx);
}

function mlp(x: tf.Tensor2D, params: ParamMap, h: string, ctx: ForwardContext): tf.Tensor2D {
  const hidden = activation(linear(x, params, `${h}.mlp.c_fc`, ctx), ctx.config.activation);
  return linear(hidden, params, `${h}.mlp.c_proj`, ctx);
}

function activation(x: tf.Tensor2D, kind: GPT2Config['activation']): tf.Tensor2D {
  switch (kind) {
    case 'relu':
      return tf.relu(x);
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as tf.Tensor2D;
    case 'gelu_new':
    case 'gelu_pytorch_tanh': {
      const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner))) as tf.Tensor2D;
    }
  }
}

/** 0 on and below the diagonal, a large negative number above it (added to the attention scores). */
function causalMask(T: number): tf.Tensor2D {
  const values = new Float32Array(T * T);
  for (let i = 0; i < T; i++) values.fill(-1e9, i * T + i + 1, (i + 1) * T);
  return tf.tensor2d(values, [T, T]);
}

function dropout<R extends tf.Rank>(x: tf.Tensor<R>, rate: number | undefined, ctx: ForwardContext): tf.Tensor<R> {
  if (!rate) return x;
  if (ctx.rng === undefined) throw new Error('dropout needs a random number generator in the forward context');
  return tf.dropout(x, rate, undefined, ctx.rng.nextSeed()) as tf.Tensor<R>;
}
