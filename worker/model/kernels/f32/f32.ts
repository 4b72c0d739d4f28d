/**
 * Float32 matrix products of our own (f32.wat) for the decode step and prompts, on weights in place.
 *
 * Why not the wasm backend's `_FusedMatMul` (XNNPACK): XNNPACK keeps a packed copy of every matrix it
 * multiplies, as large as the matrix, for as long as the matrix lives — for GPT-2 small about as much memory
 * again as the weights, and more for each block of rows a second thread is given. These kernels read the
 * weights where they lie: one row streams the matrix once (decoding is bound by memory bandwidth), and more
 * rows copy 8 columns at a time into a small panel. Measured against XNNPACK on this machine they are as fast
 * or faster for one row and for prompts (bench/f32-kernels.ts), and give the same bits for x·W: both add the
 * bias first and then the products in input order.
 */
import { readKernelBinary } from '../kernel-binary.js';

export interface F32Kernels {
  /**
   * out[r·ldo + j] = bias[j] + Σ_i x[r·ldx + i] · w[i·ldw + j] for r < rows, j < n, i < k. Pointers are byte
   * offsets (bias 0: none); strides count floats. `scratch` holds f32ScratchFloats(k, n) floats (unused for
   * a single row).
   */
  gemmNN(x: number, rows: number, k: number, ldx: number, w: number, n: number, ldw: number, bias: number, out: number, ldo: number, scratch: number): void;
  /** As gemmNN with w transposed: Σ_i x[r·ldx + i] · w[j·ldw + i] (a tied output layer stored [vocab, width]). */
  gemmNT(x: number, rows: number, k: number, ldx: number, w: number, n: number, ldw: number, bias: number, out: number, ldo: number): void;
}

/** Floats of scratch gemmNN needs: an 8-column panel of w (prompts), or a spare output row (2–4 rows). */
export function f32ScratchFloats(k: number, n: number): number {
  return Math.max(8 * k, n);
}

const compiled = new Map<boolean, WebAssembly.Module>();
const bound = new WeakMap<WebAssembly.Memory, F32Kernels>();

/**
 * The kernels working on `memory` (compiled once per thread, instantiated once per memory). A shared memory
 * (the partner's arena) takes the build that declares its memory shared, f32.shared.wasm.
 */
export function f32Kernels(memory: WebAssembly.Memory): F32Kernels {
  let kernels = bound.get(memory);
  if (!kernels) {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    let module = compiled.get(shared);
    if (!module) {
      module = new WebAssembly.Module(readKernelBinary(new URL(shared ? './f32.shared.wasm' : './f32.wasm', import.meta.url)));
      compiled.set(shared, module);
    }
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as {
      gemm_nn: F32Kernels['gemmNN'];
      gemm_nt: F32Kernels['gemmNT'];
    };
    kernels = { gemmNN: exports.gemm_nn, gemmNT: exports.gemm_nt };
    bound.set(memory, kernels);
  }
  return kernels;
}
