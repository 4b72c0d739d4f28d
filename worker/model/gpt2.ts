/**
 * GPT-2, computing exactly what Hugging Face's GPT2LMHeadModel computes (pre-LayerNorm blocks, Conv1D weights
 * stored [in, out] so a layer is x @ W + b, tanh-approximated GELU, causal self-attention scaled by 1/√head_dim).
 *
 * `gpt2Forward` is a plain function of a params object, so training can pass tf.Variables (or LoRA factors)
 * and take gradients through it; `GPT2Model` wraps it for inference with a KV cache.
 * The hidden state is kept 2-D, [batch·time, n_embd]: the WebAssembly backend sends only 2-D products
 * through its fast matrix kernel (XNNPACK); batched ones fall back to a naive loop.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attendBatched, attendHeadByHead } from './attention.js';
import { GPT2Decoder, decodePath, decodeUnsupportedReason } from './decode.js';
import { currentBackendMemory, reshaped } from './kernels/backend-memory.js';
import { f32Kernels } from './kernels/f32/f32.js';
import { nativeKernelsNote } from './kernels/native/native.js';
import { GPT2KvCache } from './kv-cache.js';
import { DecodeProducts, int8UnsupportedReason, wantedPrecision, wantedThreads, type Precision } from './parallel/decode-products.js';
import type { ForwardOptions, GPT2Config, KvCache, LanguageModel, LogitsScreen } from './types.js';

export interface LayerNormParams {
  weight: tf.Tensor1D;
  bias: tf.Tensor1D;
}

/** Low-rank adapter added to a linear layer: y += scale · (x @ a) @ b, with a [in, r] and b [r, out]. */
export interface LoraParams {
  a: tf.Tensor2D;
  b: tf.Tensor2D;
  scale: number;
}

export interface LinearParams {
  /** [in, out], as GPT-2's Conv1D stores it. */
  weight: tf.Tensor2D;
  bias: tf.Tensor1D;
  lora?: LoraParams;
}

export interface BlockParams {
  ln1: LayerNormParams;
  attn: { cAttn: LinearParams; cProj: LinearParams };
  ln2: LayerNormParams;
  mlp: { cFc: LinearParams; cProj: LinearParams };
}

export interface GPT2Params {
  /** Token embedding [vocab, n_embd]. */
  wte: tf.Tensor2D;
  /** Position embedding [n_positions, n_embd]. */
  wpe: tf.Tensor2D;
  blocks: BlockParams[];
  lnF: LayerNormParams;
  /**
   * Output layer [n_embd, vocab] (x @ W layout): an untied checkpoint's, or a transposed copy of `wte` where
   * the backend multiplies by a transposed operand slowly (GPT2Model). Absent: tied to `wte`, computed as
   * x @ wteᵀ (our kernels read wte in place; gradients flow into `wte`).
   */
  lmHead?: tf.Tensor2D;
}

/** One layer's keys and values, [batch, n_head, positions, head_dim]. */
export interface LayerKv {
  key: tf.Tensor4D;
  value: tf.Tensor4D;
}

export interface GPT2ForwardOptions extends ForwardOptions {
  /**
   * For inference only (no gradient), GPT2Model sets it: attention over long inputs runs head by head
   * (attention.ts), and a tied output layer goes through our kernel on wasm (tiedOutput): several times
   * faster there.
   */
  inference?: boolean;
}

export interface GPT2ForwardResult {
  /** [batch, vocab] for the last position, or [batch, time, vocab] with `allPositions`. */
  logits: tf.Tensor;
  /** Every layer's keys and values: `past` followed by the new positions. */
  presents: LayerKv[];
}

/**
 * Embedding lookup whose gradient avoids gather's (wasm lacks the UnsortedSegmentSum it needs): the rows of
 * dy are scattered back, summing repeated ids. The ids are saved for the backward pass, which runs after
 * the forward's scope has freed them.
 */
function embed(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [weights, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([ids]);
    return {
      value: tf.gather(weights, ids),
      gradFunc: (dy: tf.Tensor, [savedIds]: tf.Tensor[]) => tf.scatterND(tf.expandDims(savedIds, 1), dy, weights.shape),
    };
  });
  return lookup(table) as tf.Tensor2D;
}

function layerNorm(x: tf.Tensor2D, p: LayerNormParams, epsilon: number): tf.Tensor2D {
  const centered = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centered), -1, true);
  const normalized = tf.mul(centered, tf.rsqrt(tf.add(variance, epsilon)));
  return tf.add(tf.mul(normalized, p.weight), p.bias);
}

function linear(x: tf.Tensor2D, p: LinearParams): tf.Tensor2D {
  const y = tf.fused.matMul({ a: x, b: p.weight, bias: p.bias }) as tf.Tensor2D;
  if (!p.lora) return y;
  return tf.add(y, tf.mul(tf.matMul(tf.matMul(x, p.lora.a), p.lora.b), p.lora.scale));
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function activate(x: tf.Tensor2D, activation: GPT2Config['activation']): tf.Tensor2D {
  switch (activation) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh': {
      // 0.5·x·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³), written as x·sigmoid(2u): the same function in
      // fewer ops (each op costs tens of µs in a decode step).
      const twoU = tf.mul(x, tf.add(tf.mul(tf.square(x), 2 * SQRT_2_OVER_PI * 0.044715), 2 * SQRT_2_OVER_PI));
      return tf.mul(x, tf.sigmoid(twoU));
    }
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
    case 'relu':
      return tf.relu(x);
  }
}

/** [batch·time, n_embd] → [batch, n_head, time, head_dim]. With one position the transpose moves nothing. */
function splitHeads(x: tf.Tensor2D, batch: number, time: number, nHead: number): tf.Tensor4D {
  const headDim = x.shape[1] / nHead;
  if (time === 1) return tf.reshape(x, [batch, nHead, 1, headDim]);
  return tf.transpose(tf.reshape(x, [batch, time, nHead, headDim]), [0, 2, 1, 3]);
}

/** [batch, n_head, time, head_dim] → [batch·time, n_embd] */
function mergeHeads(x: tf.Tensor4D): tf.Tensor2D {
  const [batch, nHead, time, headDim] = x.shape;
  if (time === 1) return tf.reshape(x, [batch, nHead * headDim]);
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [batch * time, nHead * headDim]);
}

/** Additive mask [time, positions]: query i (at position past+i) may not see keys after it. */
function causalMask(time: number, positions: number): tf.Tensor2D {
  const past = positions - time;
  const mask = new Float32Array(time * positions);
  for (let i = 0; i < time; i++) mask.fill(-1e9, i * positions + past + i + 1, (i + 1) * positions);
  return tf.tensor2d(mask, [time, positions]);
}

/** Query–key pairs from which head-by-head attention beats the batched form (both measured on wasm). */
const HEAD_BY_HEAD_MIN_PAIRS = 1024;

function attention(
  x: tf.Tensor2D,
  p: BlockParams['attn'],
  config: GPT2Config,
  layerIndex: number,
  batch: number,
  time: number,
  past: LayerKv | null,
  inference: boolean,
): { y: tf.Tensor2D; present: LayerKv } {
  const [q, k, v] = tf.split(linear(x, p.cAttn), 3, 1) as tf.Tensor2D[];
  const query = splitHeads(q, batch, time, config.nHead);
  const newKey = splitHeads(k, batch, time, config.nHead);
  const newValue = splitHeads(v, batch, time, config.nHead);
  const key = past ? (tf.concat([past.key, newKey], 2) as tf.Tensor4D) : newKey;
  const value = past ? (tf.concat([past.value, newValue], 2) as tf.Tensor4D) : newValue;

  let scale = 1;
  if (config.scaleAttnWeights) scale /= Math.sqrt(config.nEmbd / config.nHead);
  if (config.scaleAttnByInverseLayerIdx) scale /= layerIndex + 1;
  const positions = key.shape[2];
  const mask = time > 1 ? causalMask(time, positions) : null;
  const attend = inference && time * positions >= HEAD_BY_HEAD_MIN_PAIRS ? attendHeadByHead : attendBatched;
  const y = attend(query, key, value, scale, mask);
  return { y: linear(mergeHeads(y), p.cProj), present: { key, value } };
}

function block(
  x: tf.Tensor2D,
  p: BlockParams,
  config: GPT2Config,
  layerIndex: number,
  batch: number,
  time: number,
  past: LayerKv | null,
  inference: boolean,
): { x: tf.Tensor2D; present: LayerKv } {
  const eps = config.layerNormEpsilon;
  const { y, present } = attention(layerNorm(x, p.ln1, eps), p.attn, config, layerIndex, batch, time, past, inference);
  const h = tf.add(x, y) as tf.Tensor2D;
  const m = linear(activate(linear(layerNorm(h, p.ln2, eps), p.mlp.cFc), config.activation), p.mlp.cProj);
  return { x: tf.add(h, m) as tf.Tensor2D, present };
}

/**
 * Runs `tokens` [batch, time] (int32) after the `past` positions. Pure: creates tensors, disposes none
 * (call it inside tf.tidy). Throws a RangeError past `nPositions`.
 */
export function gpt2Forward(
  params: GPT2Params,
  config: GPT2Config,
  tokens: tf.Tensor2D,
  past: LayerKv[] | null,
  options: GPT2ForwardOptions = {},
): GPT2ForwardResult {
  const [batch, time] = tokens.shape;
  const pastLength = past ? past[0].key.shape[2] : 0;
  if (pastLength + time > config.nPositions) {
    throw new RangeError(`${pastLength} + ${time} positions exceed the model's context of ${config.nPositions}`);
  }
  const positions = tf.range(pastLength, pastLength + time, 1, 'int32') as tf.Tensor1D;
  const tokenEmbeddings = tf.reshape(embed(params.wte, tf.reshape(tokens, [batch * time])), [batch, time, config.nEmbd]);
  let x = tf.reshape(tf.add(tokenEmbeddings, embed(params.wpe, positions)), [batch * time, config.nEmbd]) as tf.Tensor2D;

  const presents: LayerKv[] = [];
  params.blocks.forEach((p, i) => {
    const out = block(x, p, config, i, batch, time, past ? past[i] : null, options.inference ?? false);
    x = out.x;
    presents.push(out.present);
  });

  if (!options.allPositions && time > 1) {
    x = tf.reshape(tf.slice(tf.reshape(x, [batch, time, config.nEmbd]), [0, time - 1, 0], [batch, 1, config.nEmbd]), [batch, config.nEmbd]);
  }
  const h = layerNorm(x, params.lnF, config.layerNormEpsilon);
  const logits = params.lmHead ? tf.matMul(h, params.lmHead) : tiedOutput(h, params.wte, options.inference ?? false);
  return {
    logits: options.allPositions ? tf.reshape(logits, [batch, time, config.vocabSize]) : logits,
    presents,
  };
}

/**
 * h · wteᵀ, the tied output layer. For inference on wasm through our kernel, which reads wte in place as fast
 * as an untransposed matrix; tfjs's own kernel (XNNPACK) takes a transposed operand ~8× slower (measured
 * 170 against 20 ms a row on GPT-2 small's), and is left to gradients and other backends.
 */
function tiedOutput(h: tf.Tensor2D, wte: tf.Tensor2D, inference: boolean): tf.Tensor2D {
  const memory = inference ? currentBackendMemory() : null;
  if (!memory?.transposedInPlace || !memory.holds(h) || !memory.holds(wte)) return tf.matMul(h, wte, false, true);
  const [rows, width] = h.shape;
  const out = memory.matMul(reshaped(h, [1, rows, width]), reshaped(wte, [1, ...wte.shape]), null, true);
  return tf.reshape(memory.toTensor(out), [rows, wte.shape[0]]);
}

/**
 * Whether a tied output layer should be kept as its own transposed copy of wte ([n_embd, vocab]) on the
 * current backend: only on wasm without our kernels (tiedOutput), where the transposed product is slow. Native
 * and GPU backends transpose an operand at no cost.
 */
function tiedOutputNeedsCopy(): boolean {
  return tf.getBackend() === 'wasm' && !currentBackendMemory()?.transposedInPlace;
}

/** Every tensor of a params object, for disposal and size reports. */
export function paramTensors(params: GPT2Params): tf.Tensor[] {
  const linearTensors = (p: LinearParams) => [p.weight, p.bias, ...(p.lora ? [p.lora.a, p.lora.b] : [])];
  const ln = (p: LayerNormParams) => [p.weight, p.bias];
  return [
    params.wte,
    params.wpe,
    ...params.blocks.flatMap((b) => [
      ...ln(b.ln1),
      ...linearTensors(b.attn.cAttn),
      ...linearTensors(b.attn.cProj),
      ...ln(b.ln2),
      ...linearTensors(b.mlp.cFc),
      ...linearTensors(b.mlp.cProj),
    ]),
    ...ln(params.lnF),
    ...(params.lmHead ? [params.lmHead] : []),
  ];
}

/*
 * Every forward pass that the decode step (decode.ts) supports goes through it, prompts included; the tf-op
 * path serves the rest (LoRA adapters, exact GELU, backends whose memory the step cannot read). Measured on
 * GPT-2 small once the step's products were our own kernels (docs/performance-log.md, section 6): prompts of
 * 128 / 300 / 600 tokens take 1.31 / 2.88 / 7.09 s on one thread (tf-op path: 1.26 / 3.92 / 8.41 s) and
 * 1.05 / 3.05 / 6.41 s on two (1.22 / 3.85 / 9.63 s), and the step keeps no packed copy of the weights
 * (resident size after a 600-token prompt: 0.8 GiB against 3.5 GiB).
 */
/** Below this, a model's products are too small to gain from a second thread (see split-products.ts). */
const MIN_PARALLEL_WEIGHT_BYTES = 32 * 1024 * 1024;

export interface GPT2ModelOptions {
  /**
   * 2: a second thread shares the matrix products of the decode step (wasm backend only); 1: one thread.
   * Default: INKLING_THREADS, else 2 on a machine with two cores when the model is large enough to gain.
   */
  threads?: number;
  /**
   * exact: float32. fast: int8 weights for decoding, prompts in float32 (see decode-products.ts).
   * Default: INKLING_PRECISION, else exact.
   */
  precision?: Precision;
  /**
   * Exact precision: keep an int8 copy of the tied output layer to screen it when the caller asks for only the
   * highest logits (see output-screen.ts; ~9 % more memory on GPT-2 small, its output layer read ~4× faster).
   * Default: on, unless INKLING_SCREEN=off.
   */
  screen?: boolean;
}

/** `INKLING_SCREEN=off`: exact models compute every logit (for A/B measurements). */
export const SCREEN_ENV = 'INKLING_SCREEN';

/** GPT-2 for inference: token ids in, float32 logits out, keys and values kept in a GPT2KvCache. */
export class GPT2Model implements LanguageModel {
  readonly weightBytes: number;
  private disposed = false;
  /** The fast path for a few new tokens, where the model allows it (see decode.ts). */
  private readonly decoder: GPT2Decoder | null;
  /**
   * Settles once the second thread holds its share of the weights and the int8 copies are made, or could
   * not be (then `threadsNote` / `precisionNote` say why). Never rejects.
   */
  readonly threadsReady: Promise<void>;
  /** Why the model runs on one thread although two were asked for (null otherwise). */
  threadsNote: string | null = null;
  /** Why the model runs exact although fast was asked for (null otherwise). */
  precisionNote: string | null = null;

  constructor(
    readonly config: GPT2Config,
    /** Owned by the model from now on: `dispose()` frees them. */
    readonly params: GPT2Params,
    options: GPT2ModelOptions = {},
  ) {
    if (!params.lmHead && tiedOutputNeedsCopy()) params.lmHead = tf.tidy(() => tf.transpose(params.wte));
    this.weightBytes = paramTensors(params).reduce((sum, t) => sum + t.size * 4, 0);
    this.decoder = decodeUnsupportedReason(params, config) === null ? new GPT2Decoder(params, config) : null;
    const threads = options.threads ?? (this.weightBytes >= MIN_PARALLEL_WEIGHT_BYTES ? wantedThreads() : 1);
    const precision = options.precision ?? wantedPrecision();
    const screen = options.screen ?? globalThis.process?.env?.[SCREEN_ENV] !== 'off';
    this.threadsReady =
      threads >= 2 || precision === 'fast' || screen ? this.prepareProducts(threads, precision, screen) : Promise.resolve();
  }

  /** Threads the decode step's products run on now. */
  get threads(): number {
    return this.decoder?.products?.threads ?? 1;
  }

  /** The precision of the decode step's weights. */
  get precision(): Precision {
    return this.decoder?.products?.precision ?? 'exact';
  }

  /** Bytes of weights held beyond the model's float32 ones for the decode step (the partner's share, int8 copies). */
  get extraBytes(): number {
    return this.decoder?.products?.extraBytes ?? 0;
  }

  /**
   * Why the matrix products do not run on the native kernels (kernels/native: AVX2 and FMA; prompts ~2× as fast
   * as on the WebAssembly ones), or null when they do.
   */
  get nativeKernelsNote(): string | null {
    const heap = this.decoder?.memoryFor([])?.heap;
    if (!heap) return this.decoder ? `the ${tf.getBackend()} backend runs its own kernels` : 'this model runs on the tf-op path';
    const kernels = f32Kernels(heap.memory);
    if (kernels.native) return null;
    return kernels.fused ? nativeKernelsNote() : 'fused multiply–add is off (INKLING_FMA=off, or no relaxed SIMD)';
  }

  /** Whether the output layer is screened when a caller asks (exact precision, see output-screen.ts). */
  get screened(): boolean {
    return (this.decoder?.products?.screen ?? null) !== null;
  }

  private async prepareProducts(threads: number, precision: Precision, screen: boolean): Promise<void> {
    const int8Why = precision === 'fast' ? int8UnsupportedReason(this.config) : null;
    if (int8Why !== null) {
      // Exact then, on as many threads as asked.
      this.precisionNote = int8Why;
      precision = 'exact';
      if (threads < 2 && !screen) return;
    }
    const decoder = this.decoder;
    const memory = currentBackendMemory();
    let why: string | null = null;
    if (!decoder) why = decodeUnsupportedReason(this.params, this.config) ?? 'this model runs on the tf-op path';
    else if (!memory || !decoder.memoryFor([])) why = `the ${tf.getBackend()} backend runs its own kernels`;
    if (why === null && threads >= 2 && tf.getBackend() !== 'wasm') {
      this.threadsNote = `the ${tf.getBackend()} backend schedules its own threads`;
      threads = 1;
      if (precision === 'exact') return;
    }
    if (why !== null) {
      if (threads >= 2) this.threadsNote = why;
      if (precision === 'fast') this.precisionNote = why;
      return;
    }
    const { products: weights, mlps } = decoder!.splitWork();
    try {
      const products = await DecodeProducts.start(memory!, weights, mlps, { threads, precision, screen });
      if (this.disposed) products.dispose();
      else decoder!.products = products;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (threads < 2) {
        if (precision === 'fast') this.precisionNote = message;
        return;
      }
      // The second thread failed to start: still give the precision (and the screen) asked for, on one thread.
      this.threadsNote = message;
      if (precision === 'fast' || screen) {
        try {
          decoder!.products = await DecodeProducts.start(memory!, weights, mlps, { threads: 1, precision, screen });
        } catch (again) {
          if (precision === 'fast') this.precisionNote = again instanceof Error ? again.message : String(again);
        }
      }
    }
  }

  createCache(batch: number, positions = 0): GPT2KvCache {
    this.checkLive();
    return new GPT2KvCache(batch, null, 0, positions);
  }

  forward(tokens: number[][], cache: KvCache, options: ForwardOptions = {}): tf.Tensor {
    this.checkLive();
    if (!(cache instanceof GPT2KvCache)) throw new TypeError('forward: the cache must come from createCache()');
    if (cache.layerCount && cache.layerCount !== this.config.nLayer) {
      throw new TypeError(`forward: the cache holds ${cache.layerCount} layers, the model has ${this.config.nLayer}`);
    }
    const { batch, time, ids } = this.validateTokens(tokens, cache);
    if (cache.length + time > this.config.nPositions) {
      throw new RangeError(
        `forward: ${cache.length} cached + ${time} new positions exceed the context of ${this.config.nPositions}`,
      );
    }
    if (this.decoder && decodePath.enabled) {
      const logits = this.decodeStep(tokens, cache, options.allPositions ?? false, options.screen ?? null);
      if (logits) return logits;
    }
    const input = tf.tensor2d(ids, [batch, time], 'int32');
    try {
      const { logits, presents } = tf.tidy(
        () =>
          gpt2Forward(this.params, this.config, input, cache.pastTensors(), { ...options, inference: true }) as unknown as tf.TensorContainer,
      ) as unknown as GPT2ForwardResult;
      cache.replaceLayers(presents);
      return logits;
    } finally {
      input.dispose();
    }
  }

  /** The new tokens through GPT2Decoder, or null where the current backend cannot run it. */
  private decodeStep(tokens: number[][], cache: GPT2KvCache, allPositions: boolean, screen: LogitsScreen | null): tf.Tensor | null {
    const decoder = this.decoder!;
    if (!decoder.memoryFor(cache.buffers() ?? [])) return null;
    const { nLayer, nHead, nEmbd, nPositions } = this.config;
    cache.reserve(tokens[0].length, nPositions, { nLayer, nHead, headDim: nEmbd / nHead });
    const kv = cache.buffers()!;
    const memory = decoder.memoryFor(kv);
    if (!memory) return null;
    const logits = decoder.step(memory, tokens, kv, cache.length, allPositions, screen);
    cache.advance(tokens[0].length);
    return logits;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const products = this.decoder?.products ?? null;
    // Dropped too: the partner's share lives in memory shared with its thread, freed once nothing holds it.
    if (this.decoder) this.decoder.products = null;
    products?.dispose();
    const seen = new Set<tf.Tensor>();
    for (const t of paramTensors(this.params)) {
      if (!seen.has(t)) t.dispose();
      seen.add(t);
    }
  }

  private checkLive(): void {
    if (this.disposed) throw new Error('GPT2Model: used after dispose()');
  }

  private validateTokens(tokens: number[][], cache: GPT2KvCache): { batch: number; time: number; ids: Int32Array } {
    const batch = tokens.length;
    if (batch !== cache.batch) throw new RangeError(`forward: ${batch} token rows for a cache of batch ${cache.batch}`);
    const time = tokens[0]?.length ?? 0;
    if (time === 0) throw new RangeError('forward: no tokens to run');
    const ids = new Int32Array(batch * time);
    tokens.forEach((row, b) => {
      if (row.length !== time) throw new RangeError(`forward: row ${b} has ${row.length} tokens, row 0 has ${time}`);
      row.forEach((id, t) => {
        if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
          throw new RangeError(`forward: token ${id} (row ${b}, position ${t}) is outside the vocabulary of ${this.config.vocabSize}`);
        }
        ids[b * time + t] = id;
      });
    });
    return { batch, time, ids };
  }
}
