/**
 * The GPT-2 decode step (one or a few new tokens per sequence after the cached ones), computed below the tf engine on backends whose memory we
 * can read (kernels/backend-memory.ts): the 49 matrix products go through the backend's own fused matrix
 * kernel (XNNPACK on wasm), everything between them is a loop over backend memory (kernels/host-ops.ts), and
 * the new keys and values are written into the KV cache's buffers in place.
 *
 * Per layer that is 4 matrix products and 4 small loops (add + layer norm, attention, add + layer norm, GELU)
 * instead of ~58 engine kernels. The result equals `gpt2Forward` to float32 rounding (test/model/decode.test.ts).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { currentBackendMemory, reshaped, type BackendMemory } from './kernels/backend-memory.js';
import { decodeAttention, embedRows } from './kernels/host-ops.js';
import { attentionKernelsFit } from './kernels/attention/attention.js';
import { activateInPlace, f32Kernels, layerNormInPlace, type Activation } from './kernels/f32/f32.js';
import { attendSplit } from './kernels/attention/heads.js';
import { paramTensors, type GPT2Params, type LayerKv, type LinearParams } from './gpt2.js';
import type { GPT2Config, LogitsScreen } from './types.js';
import type { SplitMlp, DecodeProducts, SplitWeight } from './parallel/decode-products.js';

/**
 * Off: every forward pass takes the tf-op path (for A/B measurements and for ruling the decode step out).
 * `INKLING_DECODE_PATH=off` starts it off, which reaches engine worker threads too.
 */
export const DECODE_PATH_ENV = 'INKLING_DECODE_PATH';
export const decodePath = { enabled: globalThis.process?.env?.[DECODE_PATH_ENV] !== 'off' };

/**
 * Rows up to which the output layer is screened (output-screen.ts). The int8 product's compute grows with the
 * rows while float32's reads do not: GPT-2 small, one process alternating, screened over full time a step 0.86
 * for one row, 0.94 for two, 1.05 for three and four (performance log, section 10).
 */
const SCREEN_MAX_ROWS = 2;

/** New positions per row from which attention goes through the matrix kernel (see prompt-attention.ts). */
const PROMPT_ATTENTION_MIN_TIME = 16;

interface Linear3d {
  /** The weight seen as [1, in, out], the shape the matrix kernel takes (no copy). */
  weight: tf.TensorInfo;
  bias: tf.TensorInfo;
  /** Its place in `splitWork().products` (-1: an MLP weight, split with its MLP). */
  index: number;
}

/** Why a model cannot use the decode step (null: it can); the tf-op path serves it then. */
export function decodeUnsupportedReason(params: GPT2Params, config: GPT2Config): string | null {
  if (config.activation === 'gelu') return 'exact (erf) GELU has no host kernel';
  const linears = params.blocks.flatMap((b) => [b.attn.cAttn, b.attn.cProj, b.mlp.cFc, b.mlp.cProj]);
  if (linears.some((l) => l.lora)) return 'LoRA adapters are applied by the tf-op path';
  return null;
}

export class GPT2Decoder {
  private readonly linears: { cAttn: Linear3d; attnProj: Linear3d; cFc: Linear3d; mlpProj: Linear3d }[];
  private readonly lmHead: { weight: tf.TensorInfo; transposed: boolean; index: number };
  private scratch = new Float64Array(0);
  private readonly activation: Activation;
  private readonly tensors: tf.Tensor[];
  /** Set while a second thread shares the matrix products (parallel/split-products.ts). */
  products: DecodeProducts | null = null;

  constructor(
    private readonly params: GPT2Params,
    private readonly config: GPT2Config,
  ) {
    this.tensors = paramTensors(params);
    this.activation = config.activation === 'relu' ? 'relu' : 'gelu_new';
    let index = 0;
    const as3d = (l: LinearParams, split = true): Linear3d => ({
      weight: reshaped(l.weight, [1, ...l.weight.shape]),
      bias: l.bias,
      index: split ? index++ : -1,
    });
    this.linears = params.blocks.map((b) => ({
      cAttn: as3d(b.attn.cAttn),
      attnProj: as3d(b.attn.cProj),
      cFc: as3d(b.mlp.cFc, false),
      mlpProj: as3d(b.mlp.cProj, false),
    }));
    this.lmHead = params.lmHead
      ? { weight: reshaped(params.lmHead, [1, ...params.lmHead.shape]), transposed: false, index }
      : { weight: reshaped(params.wte, [1, ...params.wte.shape]), transposed: true, index };
  }

  /**
   * What a second thread can share: the attention products and the output layer (in the order of their
   * indices) and every MLP whole (one hand-off per MLP; its hidden units never cross threads).
   */
  splitWork(): { products: SplitWeight[]; mlps: SplitMlp[] } {
    const linears = this.linears.flatMap((l) => [l.cAttn, l.attnProj]);
    return {
      products: [
        ...linears.map((l) => ({ weight: l.weight, transposed: false, hasBias: true })),
        { weight: this.lmHead.weight, transposed: this.lmHead.transposed, hasBias: false },
      ],
      mlps: this.params.blocks.map(({ mlp }) => ({
        fc: mlp.cFc.weight,
        fcBias: mlp.cFc.bias,
        proj: mlp.cProj.weight,
        projBias: mlp.cProj.bias,
        activation: this.activation,
      })),
    };
  }

  /** The current backend's memory when this step can run on it (and the tensors live there), else null. */
  memoryFor(kv: LayerKv[]): BackendMemory | null {
    const memory = currentBackendMemory();
    if (!memory) return null;
    // Tensors made under another backend stay there until the engine moves them; read only ours.
    const here = (t: tf.Tensor) => memory.holds(t);
    return this.tensors.every(here) && kv.every((l) => here(l.key) && here(l.value)) ? memory : null;
  }

  /**
   * Runs `tokens` ([batch][time] ids) from `position` on, writing their keys/values into `kv` (buffers with room
   * for position + time) and returning logits: [batch, vocab] for each row's last position, or
   * [batch, time, vocab] with `allPositions`; with a `screen`, −∞ where a logit cannot matter to it (see
   * output-screen.ts). Frees every intermediate, even when it throws.
   */
  step(
    memory: BackendMemory,
    tokens: readonly (readonly number[])[],
    kv: LayerKv[],
    position: number,
    allPositions = false,
    screen: LogitsScreen | null = null,
  ): tf.Tensor {
    const { nEmbd: C, nHead, layerNormEpsilon: eps, vocabSize } = this.config;
    const batch = tokens.length;
    const time = tokens[0].length;
    const headDim = C / nHead;
    const capacity = kv[0].key.shape[2];
    if (this.scratch.length < capacity + headDim) this.scratch = new Float64Array(capacity + headDim);
    const live = new Set<tf.TensorInfo>();
    const alloc = (shape: number[]) => {
      const info = memory.alloc(shape);
      live.add(info);
      return info;
    };
    const free = (info: tf.TensorInfo) => {
      live.delete(info);
      memory.free(info);
    };
    const products = this.products;
    const matMul = (x: tf.TensorInfo, w: { weight: tf.TensorInfo; index: number; transposed?: boolean }, bias: tf.TensorInfo | null) => {
      const y = products && w.index >= 0 ? products.matMul(x, w.index, bias) : memory.matMul(x, w.weight, bias, w.transposed ?? false);
      live.add(y);
      return y;
    };
    const v = memory.view;
    const p = this.params;
    let rows = [1, batch * time, C];
    /** Each row's last position of a [1, batch * time, C] buffer, into a new [1, batch, C] one; frees the old. */
    const lastPositions = (all: tf.TensorInfo) => {
      const last = alloc([1, batch, C]);
      const [from, to] = [v(all), v(last)];
      for (let b = 0; b < batch; b++) to.set(from.subarray(((b + 1) * time - 1) * C, (b + 1) * time * C), b * C);
      free(all);
      return last;
    };
    // Without allPositions only each row's last position reaches the output layer, so the last block needs the
    // other positions only for their keys and values: past its attention it carries the last positions alone
    // (a prompt of 128 skips 127/128 of the last MLP and attention projection, ~6 % of its products).
    const narrowLast = !allPositions && time > 1;
    try {
      // Attention through our kernels where they can reach the cache (wasm heap), shared with the partner.
      const prompt = time >= PROMPT_ATTENTION_MIN_TIME && memory.heap !== null;
      const simd = prompt || (memory.heap !== null && attentionKernelsFit(headDim));
      let x = alloc(rows); // the residual stream, updated in place
      let h = alloc(rows);
      embedRows(v(p.wte), v(p.wpe), tokens, position, v(x));
      layerNormInPlace(memory, x, null, p.blocks[0].ln1.weight, p.blocks[0].ln1.bias, eps, h);
      let pending: tf.TensorInfo | null = null; // the MLP output still to be added to the residual

      for (let i = 0; i < p.blocks.length; i++) {
        const block = p.blocks[i];
        const w = this.linears[i];
        if (pending) {
          h = alloc(rows);
          layerNormInPlace(memory, x, pending, block.ln1.weight, block.ln1.bias, eps, h);
          free(pending);
        }
        const qkv = matMul(h, w.cAttn, w.cAttn.bias);
        free(h);
        let attended = alloc(rows);
        const attention = { batch, nHead, headDim, capacity, position, time, scale: this.attentionScale(i) };
        if (simd) attendSplit(memory, qkv, kv[i].key, kv[i].value, attention, attended, prompt ? 'prompt' : 'decode', products?.attentionHelper() ?? null);
        else decodeAttention(v(qkv), v(kv[i].key), v(kv[i].value), attention, v(attended), this.scratch);
        free(qkv);
        if (narrowLast && i === p.blocks.length - 1) {
          x = lastPositions(x);
          attended = lastPositions(attended);
          rows = [1, batch, C];
        }
        const projected = matMul(attended, w.attnProj, w.attnProj.bias);
        free(attended);
        h = alloc(rows);
        layerNormInPlace(memory, x, projected, block.ln2.weight, block.ln2.bias, eps, h);
        free(projected);
        const shared = products?.mlp(h, i) ?? null;
        if (shared) {
          live.add(shared);
          pending = shared;
          free(h);
        } else {
          const hidden = matMul(h, w.cFc, w.cFc.bias);
          free(h);
          activateInPlace(memory, hidden, this.activation);
          pending = matMul(hidden, w.mlpProj, w.mlpProj.bias);
          free(hidden);
        }
      }

      h = alloc(rows);
      layerNormInPlace(memory, x, pending!, p.lnF.weight, p.lnF.bias, eps, h);
      free(pending!);
      free(x);
      const screened = screen && !allPositions ? this.screenedHead(memory, h, batch, screen) : null;
      const logits = screened ?? matMul(h, this.lmHead, null);
      live.add(logits);
      free(h);
      live.delete(logits);
      const shape = allPositions ? [batch, time, vocabSize] : [batch, vocabSize];
      return memory.toTensor({ dataId: logits.dataId, shape, dtype: 'float32' });
    } finally {
      for (const info of live) memory.free(info);
    }
  }

  /**
   * The output layer for h [1, rows, C] through the products' int8 screen: every logit −∞ but those that can be
   * among `screen.keep` highest, which get the float32 kernel's own sum (gemm_nt sums each output alike for one to
   * four rows, and alone). Null where there is no screen or it would not pay (SCREEN_MAX_ROWS); the full layer runs then.
   */
  private screenedHead(memory: BackendMemory, h: tf.TensorInfo, rows: number, screen: LogitsScreen): tf.TensorInfo | null {
    const outputScreen = this.products?.screen ?? null;
    const heap = memory.heap;
    if (!outputScreen || !heap || rows > SCREEN_MAX_ROWS || !this.lmHead.transposed) return null;
    const { vocabSize: V, nEmbd: C } = this.config;
    const approx = this.products!.matMul(h, this.lmHead.index, null, true);
    let out: tf.TensorInfo | null = memory.alloc([1, rows, V]);
    try {
      const kernels = f32Kernels(heap.memory);
      const [hAt, wAt, outAt] = [heap.offset(h), heap.offset(this.params.wte), heap.offset(out)];
      for (let r = 0; r < rows; r++) {
        const [hv, approxRow] = [memory.view(h).subarray(r * C, (r + 1) * C), memory.view(approx).subarray(r * V, (r + 1) * V)];
        const picked = outputScreen.select(approxRow, outputScreen.bound(hv), screen.keep, (bounds) => screen.process(r, bounds));
        if (picked === null) return null;
        memory.view(out).fill(-Infinity, r * V, (r + 1) * V);
        const [x, row] = [hAt + 4 * r * C, outAt + 4 * r * V];
        for (const j of picked) kernels.gemmNT(x, 1, C, C, wAt + 4 * j * C, 1, C, 0, row + 4 * j, 1, 0);
      }
      const done = out;
      out = null;
      return done;
    } finally {
      memory.free(approx);
      if (out) memory.free(out);
    }
  }

  private attentionScale(layerIndex: number): number {
    let scale = 1;
    if (this.config.scaleAttnWeights) scale /= Math.sqrt(this.config.nEmbd / this.config.nHead);
    if (this.config.scaleAttnByInverseLayerIdx) scale /= layerIndex + 1;
    return scale;
  }
}
