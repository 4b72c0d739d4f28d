/**
 * SIMD kernels for one head of a decode step's attention (attention.wat), instantiated on the WebAssembly
 * backend's own memory so that they read the KV cache in place. JavaScript's loops cost ~1.5 ns per
 * multiply–add here; these ~0.4 (bench/simd-dot-spike.ts), a few ms per GPT-2-small token at 200 positions.
 */
import { isSharedHeap } from '../../../wasm-shared-heap.js';
import { readKernelBinary } from '../kernel-binary.js';

export interface AttentionKernels {
  /** out[j] = scale · (q · k[j]) for j < n; k holds n rows of d floats. Byte offsets; d a multiple of 8. */
  scores(qPtr: number, kPtr: number, n: number, d: number, scale: number, outPtr: number): void;
  /** out = Σ_j p[j] · v[j] over n rows of d floats. */
  mix(pPtr: number, vPtr: number, n: number, d: number, outPtr: number): void;
}

/** Head widths the kernels take (they step 8 floats at a time). */
export function attentionKernelsFit(headDim: number): boolean {
  return headDim > 0 && headDim % 8 === 0;
}

const compiled = new Map<string, WebAssembly.Module>();
const bound = new WeakMap<WebAssembly.Memory, AttentionKernels>();

export function attentionKernels(memory: WebAssembly.Memory): AttentionKernels {
  let kernels = bound.get(memory);
  if (!kernels) {
    // A module declares whether the memory it imports is shared: the backend's heap may be (wasm-shared-heap.ts).
    const file = isSharedHeap(memory) ? './attention.shared.wasm' : './attention.wasm';
    // Synchronous: a 0.6 KB module, compiled once per thread.
    let module = compiled.get(file);
    if (!module) compiled.set(file, (module = new WebAssembly.Module(readKernelBinary(new URL(file, import.meta.url)))));
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as {
      attn_scores: AttentionKernels['scores'];
      attn_mix: AttentionKernels['mix'];
    };
    kernels = { scores: exports.attn_scores, mix: exports.attn_mix };
    bound.set(memory, kernels);
  }
  return kernels;
}
