/**
 * The native kernels (gemm.c: the float32 products of prompts and decode steps, and the int8 ones): loaded once per thread when they were built for this machine
 * (scripts/build-native.mjs, run by npm's postinstall) and its CPU has AVX2 and FMA; otherwise the engine runs
 * on its WebAssembly kernels alone, and `nativeKernelsNote` says why. `INKLING_NATIVE=off` turns them off.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { kernelBinaryPath } from '../kernel-binary.js';

export const NATIVE_ENV = 'INKLING_NATIVE';

export interface NativeKernels {
  /**
   * f32-fma.wat's gemm_panels on a WebAssembly heap, with the same bits: out[r·ldo + j] = bias[j] +
   * Σ_i x[r·ldx + i] · w[i·ldw + j]. `heap` views the whole memory; pointers are its byte offsets (bias 0: none);
   * strides count floats; scratch holds 16·k floats. Throws a RangeError for a matrix outside the heap.
   */
  gemmPanels(heap: Uint8Array, ...product: ProductArgs): void;
  /**
   * f32.wat's gemm_nn for 1 to 4 rows (scratch unused), with its bits (XNNPACK's): a decode step's products,
   * streamed with 256-bit loads.
   */
  gemmRows(heap: Uint8Array, ...product: ProductArgs): void;
  /** q8.wat's q8_matvec (the fast precision's products), with its bits; its checks beside (a RangeError). */
  q8Matvec(heap: Uint8Array, ...product: Q8Args): void;
}

/** x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch: as F32Kernels.gemmNN's. */
export type ProductArgs = [x: number, rows: number, k: number, ldx: number, w: number, n: number, ldw: number, bias: number, out: number, ldo: number, scratch: number];
/** w, ws, xq, xs, y, bias, inDim, rowStart, rowEnd, nX, outDim: as Q8Kernels.q8Matvec's. */
export type Q8Args = [w: number, ws: number, xq: number, xs: number, y: number, bias: number, inDim: number, rowStart: number, rowEnd: number, nX: number, outDim: number];
/** An 11-number kernel bound to one memory. */
type Bound<Args extends unknown[]> = (...args: Args) => void;

interface Addon extends NativeKernels {
  /** Why this CPU cannot run them, or null. */
  unavailable: string | null;
}

let loaded: { kernels: NativeKernels | null; note: string | null } | undefined;

function load(): { kernels: NativeKernels | null; note: string | null } {
  if (globalThis.process?.env?.[NATIVE_ENV] === 'off') return { kernels: null, note: `${NATIVE_ENV}=off` };
  const file = kernelBinaryPath(new URL('./inkling-native.node', import.meta.url));
  if (!existsSync(file)) return { kernels: null, note: 'not built on this machine (npm run build:native)' };
  try {
    const addon = createRequire(import.meta.url)(file) as Addon;
    return addon.unavailable ? { kernels: null, note: addon.unavailable } : { kernels: addon, note: null };
  } catch (error) {
    return { kernels: null, note: `cannot load ${file}: ${(error as Error).message}` };
  }
}

/** The native kernels, or null when this machine runs without them. */
export function nativeKernels(): NativeKernels | null {
  loaded ??= load();
  return loaded.kernels;
}

/** Why there are no native kernels here (null when there are). */
export function nativeKernelsNote(): string | null {
  loaded ??= load();
  return loaded.note;
}

/** The native kernels bound to one WebAssembly memory, or null where this machine has none. */
export interface NativeOnMemory {
  gemmPanels: Bound<ProductArgs>;
  gemmRows: Bound<ProductArgs>;
  q8Matvec: Bound<Q8Args>;
}

/**
 * The native kernels working on `memory`, through a view of it that is renewed when the memory grows (a grown
 * memory's old buffer is detached, or, shared, too short); null where this machine has none.
 */
export function nativeOn(memory: WebAssembly.Memory): NativeOnMemory | null {
  const native = nativeKernels();
  if (!native) return null;
  let heap = new Uint8Array(memory.buffer);
  const view = () => (heap.buffer === memory.buffer ? heap : (heap = new Uint8Array(memory.buffer)));
  // Parameters spelled out: a rest array would be an allocation per product in the decode loop.
  return {
    gemmPanels: (x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch) => native.gemmPanels(view(), x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch),
    gemmRows: (x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch) => native.gemmRows(view(), x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch),
    q8Matvec: (w, ws, xq, xs, y, bias, inDim, rowStart, rowEnd, nX, outDim) =>
      native.q8Matvec(view(), w, ws, xq, xs, y, bias, inDim, rowStart, rowEnd, nX, outDim),
  };
}
