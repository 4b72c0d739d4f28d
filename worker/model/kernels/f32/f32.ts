/**
 * Float32 kernels of our own (f32.wat) for the decode step and prompts: the matrix products, on weights in
 * place, the two elementwise steps that need an exponential (GELU, the attention's softmax), and the layer
 * norms.
 *
 * Why not the wasm backend's `_FusedMatMul` (XNNPACK): XNNPACK keeps a packed copy of every matrix it
 * multiplies, as large as the matrix, for as long as the matrix lives — for GPT-2 small about as much memory
 * again as the weights, and more for each block of rows a second thread is given. These kernels read the
 * weights where they lie: up to 4 rows stream the matrix once (decoding is bound by memory bandwidth), and more
 * rows copy 16 columns at a time into two small panels. Measured against XNNPACK on this machine they are as fast
 * or faster (bench/f32-kernels.ts), and up to 4 rows give the same bits: both add the bias first and then the
 * products in input order.
 *
 * Prompts (more than 4 rows) use fused multiply–add where the runtime has relaxed SIMD (f32-fma.wat): ~1.3×
 * faster, results within float32 rounding of the others. `INKLING_FMA=off` keeps them on f32.wat. Where the
 * native kernels are built and the CPU has AVX2 (native/gemm.c), prompts run there instead: ~2× faster again,
 * and the same bits as f32-fma.wat; so do products of up to 4 rows (decoding), ~1.2× faster, with gemm_nn's bits.
 */
import v8 from 'node:v8';
import type * as tf from '@tensorflow/tfjs-core';
import type { BackendMemory } from '../backend-memory.js';
import { addLayerNormRows, geluTanhInPlace, layerNormRows, reluInPlace } from '../host-ops.js';
import { isSharedHeap } from '../../../wasm-shared-heap.js';
import { readKernelBinary } from '../kernel-binary.js';
import { nativeOn } from '../native/native.js';

export const FMA_ENV = 'INKLING_FMA';

export interface F32Kernels {
  /**
   * out[r·ldo + j] = bias[j] + Σ_i x[r·ldx + i] · w[i·ldw + j] for r < rows, j < n, i < k. Pointers are byte
   * offsets (bias 0: none); strides count floats. `scratch` holds f32ScratchFloats(k, n, rows) floats
   * (unused for a single row).
   */
  gemmNN(x: number, rows: number, k: number, ldx: number, w: number, n: number, ldw: number, bias: number, out: number, ldo: number, scratch: number): void;
  /**
   * As gemmNN with w transposed: Σ_i x[r·ldx + i] · w[j·ldw + i] (a tied output layer stored [vocab, width]).
   * `scratch` as gemmNN's (unused for up to 4 rows).
   */
  gemmNT(x: number, rows: number, k: number, ldx: number, w: number, n: number, ldw: number, bias: number, out: number, ldo: number, scratch: number): void;
  /** GPT-2's GELU (tanh form) in place on n floats at byte offset `at`; n a multiple of 4. */
  geluTanh(at: number, n: number): void;
  /** Softmax in place on one row of n scores at byte offset `at`, each times `scale` (> 0) first; n ≥ 1. */
  softmaxRow(at: number, n: number, scale: number): void;
  /**
   * Layer norm of `rows` rows of c floats at byte offset x into out (c a multiple of 4), after adding the rows
   * at `branch` into x in place unless branch is 0. Byte offsets; eps as the model's.
   */
  layerNorm(x: number, branch: number, rows: number, c: number, gamma: number, beta: number, eps: number, out: number): void;
  /** dst[i] += src[i] for n floats at byte offsets dst and src. */
  add(dst: number, src: number, n: number): void;
  /** Whether prompts use fused multiply–add (f32-fma.wat, or the native kernels). */
  readonly fused: boolean;
  /** Whether prompts (and decoding's products) run on the native kernels (native/gemm.c). */
  readonly native: boolean;
}

/**
 * Floats of scratch gemmNN and gemmNT need for `rows` rows: a spare output row, two 8-column panels of w (up to
 * 4 rows); for prompts eight panels of w and x repacked in blocks of 4 rows (f32-fma.wat).
 */
export function f32ScratchFloats(k: number, n: number, rows: number): number {
  return rows >= PANEL_ROWS ? f32FixedScratchFloats(k, n) + 4 * Math.ceil(rows / 4) * k : Math.max(16 * k, n);
}

/**
 * The part of f32ScratchFloats that does not grow with the rows: a prompt's eight 8-column panels of w, k deep
 * (more than up to 4 rows need).
 */
export function f32FixedScratchFloats(k: number, n: number): number {
  return Math.max(64 * k, n);
}

/** Rows from which gemmNN takes the panel path (the one with a fused variant). */
const PANEL_ROWS = 5;

const compiled = new Map<string, WebAssembly.Module | null>();
const bound = new WeakMap<WebAssembly.Memory, F32Kernels>();

function module(name: string, optional: boolean): WebAssembly.Module | null {
  if (!compiled.has(name)) {
    const bytes = readKernelBinary(new URL(`./${name}`, import.meta.url));
    compiled.set(name, optional && !relaxedSimdValidates(bytes) ? null : new WebAssembly.Module(bytes));
  }
  return compiled.get(name)!;
}

/**
 * Whether this runtime takes a relaxed-SIMD module: Electron's V8 does as it is; Node 20's V8 (11.3) once its
 * feature flag is on, which is read when a module is compiled, so setting it now is enough.
 */
export function relaxedSimdValidates(bytes: Uint8Array<ArrayBuffer>): boolean {
  if (globalThis.process?.env?.[FMA_ENV] === 'off') return false;
  if (WebAssembly.validate(bytes)) return true;
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    return false;
  }
  return WebAssembly.validate(bytes);
}

/**
 * The kernels working on `memory` (compiled once per thread, instantiated once per memory). A shared memory
 * (the partner's arena) takes the builds that declare their memory shared (*.shared.wasm).
 */
export function f32Kernels(memory: WebAssembly.Memory): F32Kernels {
  let kernels = bound.get(memory);
  if (!kernels) {
    const shared = isSharedHeap(memory);
    const suffix = shared ? '.shared.wasm' : '.wasm';
    const plain = new WebAssembly.Instance(module(`f32${suffix}`, false)!, { env: { memory } }).exports as unknown as {
      gemm_nn: F32Kernels['gemmNN'];
      gemm_nt: F32Kernels['gemmNT'];
      gelu_tanh: F32Kernels['geluTanh'];
      softmax_row: F32Kernels['softmaxRow'];
      layer_norm: F32Kernels['layerNorm'];
      add: F32Kernels['add'];
    };
    const fmaModule = module(`f32-fma${suffix}`, true);
    const fma = fmaModule
      ? (new WebAssembly.Instance(fmaModule, { env: { memory } }).exports as unknown as { gemm_panels: F32Kernels['gemmNN'] })
      : null;
    // The native kernels give f32-fma.wat's bits for prompts, so they serve where it does (INKLING_FMA=off turns
    // both off), and gemm_nn's for up to 4 rows.
    const native = nativeOn(memory);
    const prompt = fma ? (native?.gemmPanels ?? fma.gemm_panels) : null;
    const few = native?.gemmRows ?? plain.gemm_nn;
    const gemmNN: F32Kernels['gemmNN'] = (x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch) =>
      (rows < PANEL_ROWS ? few : (prompt ?? plain.gemm_nn))(x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch);
    kernels = {
      gemmNN,
      gemmNT: plain.gemm_nt,
      geluTanh: plain.gelu_tanh,
      softmaxRow: plain.softmax_row,
      layerNorm: plain.layer_norm,
      add: plain.add,
      fused: prompt !== null,
      native: native !== null && fma !== null,
    };
    bound.set(memory, kernels);
  }
  return kernels;
}

/** An MLP's activation: GPT-2's GELU (tanh form) or ReLU. */
export type Activation = 'gelu_new' | 'relu';

/**
 * The activation in place on n floats at byte offset `at` of a wasm memory: GELU through the SIMD kernel
 * (~9× faster than Math.tanh, within ~1e-6 relative) when n is a multiple of 4, else the JavaScript loops.
 */
export function activateAt(memory: WebAssembly.Memory, at: number, n: number, activation: Activation): void {
  if (activation === 'gelu_new' && n % 4 === 0) f32Kernels(memory).geluTanh(at, n);
  else (activation === 'relu' ? reluInPlace : geluTanhInPlace)(new Float32Array(memory.buffer, at, n));
}

/** The activation in place on a buffer of backend memory (activateAt where it is a wasm heap). */
export function activateInPlace(memory: BackendMemory, info: tf.TensorInfo, activation: Activation): void {
  if (memory.heap) activateAt(memory.heap.memory, memory.heap.offset(info), info.shape.reduce((a, b) => a * b, 1), activation);
  else (activation === 'relu' ? reluInPlace : geluTanhInPlace)(memory.view(info));
}

/**
 * out = LayerNorm(x) row by row, after x += branch (in place) when a branch is given: the seam between two
 * sub-layers. Through the SIMD kernel on a wasm heap (~5× the JavaScript loops, host-ops.ts, which serve
 * elsewhere).
 */
export function layerNormInPlace(
  memory: BackendMemory,
  x: tf.TensorInfo,
  branch: tf.TensorInfo | null,
  gamma: tf.TensorInfo,
  beta: tf.TensorInfo,
  epsilon: number,
  out: tf.TensorInfo,
): void {
  const c = gamma.shape[0];
  if (memory.heap && c % 4 === 0) {
    const { offset } = memory.heap;
    const rows = x.shape.reduce((a, b) => a * b, 1) / c;
    f32Kernels(memory.heap.memory).layerNorm(offset(x), branch ? offset(branch) : 0, rows, c, offset(gamma), offset(beta), epsilon, offset(out));
  } else if (branch) {
    addLayerNormRows(memory.view(x), memory.view(branch), memory.view(gamma), memory.view(beta), epsilon, memory.view(out));
  } else {
    layerNormRows(memory.view(x), memory.view(gamma), memory.view(beta), epsilon, memory.view(out));
  }
}
