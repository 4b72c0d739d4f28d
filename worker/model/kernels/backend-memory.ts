/**
 * Direct access to a TensorFlow.js backend's memory and matrix products, below the engine.
 *
 * Why: a GPT-2 decode step is ~100 small operations around 49 matrix products; through the engine each costs
 * 15–50 µs of bookkeeping (tensor tracking, scopes, shape checks) — 30+ ms of a ~100 ms step (measured, see
 * docs/performance-log.md). Multiplying straight on the backend's memory (on wasm with our kernels, f32/,
 * elsewhere with the backend's own `_FusedMatMul` kernel function) and computing the small operations on
 * views of that memory skips it. Only the backends whose memory we know how to read
 * are supported: WebAssembly (tensors live in the module's heap) and plain JavaScript (typed arrays). Others
 * (native TensorFlow, WebGL) take the tf-op path, which is fast there anyway.
 */
import * as tf from '@tensorflow/tfjs-core';
import { f32Kernels, f32ScratchFloats } from './f32/f32.js';

/**
 * `INKLING_MATMUL=xnnpack` sends the wasm backend's direct products back through its own kernel (XNNPACK)
 * instead of ours (f32/f32.ts): for A/B measurements, and as a way out should ours misbehave somewhere.
 */
export const MATMUL_ENV = 'INKLING_MATMUL';

export type Float32Info = tf.TensorInfo & { dtype: 'float32' };

export interface BackendMemory {
  /** A new uninitialised float32 buffer; free it with `free` unless it becomes a tensor (`toTensor`). */
  alloc(shape: number[]): Float32Info;
  /**
   * The numbers of a float32 tensor or buffer, in place (writes change the tensor). Valid only until the next
   * `alloc` or matMul: the WebAssembly heap may grow and detach earlier views.
   */
  view(info: tf.TensorInfo): Float32Array;
  free(info: tf.TensorInfo): void;
  /** Whether the tensor's numbers live in this backend (tensors made under another stay there until moved). */
  holds(t: tf.TensorInfo): boolean;
  /**
   * a [1, rows, k] @ b [1, k, n] (+ bias [n]) → [1, rows, n] (b [1, n, k] when transposed). On wasm through
   * our kernels (f32/f32.ts), which read b in place; elsewhere through the backend's fused matrix kernel.
   */
  matMul(a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | null, transposeB: boolean): Float32Info;
  /**
   * a [1, rows, k] @ columns [from, from + count) of b [1, k, n] (+ bias [count]) → [1, rows, count], b read in
   * place. Null where the products are the backend's own: they take whole matrices (copy the columns out).
   */
  matMulColumns: ((a: tf.TensorInfo, b: tf.TensorInfo, from: number, count: number, bias: tf.TensorInfo | null) => Float32Info) | null;
  /**
   * Whether matMul reads a transposed b in place as fast as an untransposed one (our kernels). The backends'
   * own kernels take it ~8× slower on wasm (XNNPACK), which is why a tied output layer may need a copy there.
   */
  transposedInPlace: boolean;
  /** Hands a buffer over to the engine as an ordinary tensor (disposed like any other). */
  toTensor(info: tf.TensorInfo): tf.Tensor;
  /**
   * `size(shape)` numbers of a float32 tensor from element `offset` on, seen as a buffer of their own (no
   * copy): a block of rows of a weight matrix handed to the matrix kernel. It stays valid while the tensor
   * lives; give it back with `releaseAlias`, never `free` (it owns no memory).
   */
  alias(info: tf.TensorInfo, offset: number, shape: number[]): Float32Info;
  releaseAlias(alias: tf.TensorInfo): void;
  /**
   * WebAssembly only: the module's memory and a tensor's byte offset in it, for kernels of our own that
   * import that memory and work on tensors in place (kernels/attention). Null on other backends.
   */
  heap: { memory: WebAssembly.Memory; offset(info: tf.TensorInfo): number } | null;
}

interface WasmTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: 'float32';
  refCount: number;
}

interface WasmBackendLike {
  dataIdMap: {
    has(dataId: tf.DataId): boolean;
    get(dataId: tf.DataId): WasmTensorData | undefined;
    set(dataId: tf.DataId, data: WasmTensorData): void;
    delete(dataId: tf.DataId): boolean;
  };
  dataIdNextNumber: number;
  wasm: { asm?: { memory?: WebAssembly.Memory }; tfjs: { registerTensor(id: number, size: number, memoryOffset: number): void; disposeData(id: number): void } };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  disposeData(dataId: tf.DataId): boolean;
}

interface CpuBackendLike {
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
  data: { get(dataId: tf.DataId): { values: unknown }; has(dataId: tf.DataId): boolean };
  disposeData(dataId: tf.DataId): boolean;
}

const SUPPORTED = new Set(['wasm', 'cpu']);

/** The current backend's memory, or null where this direct path is not available. */
export function currentBackendMemory(): BackendMemory | null {
  const name = tf.getBackend();
  if (!SUPPORTED.has(name)) return null;
  let kernel: tf.KernelConfig;
  try {
    kernel = tf.getKernel('_FusedMatMul', name);
  } catch {
    return null;
  }
  if (!kernel) return null;
  const backend = tf.findBackend(name);
  if (!backend) return null;
  // Made once per backend (and INKLING_MATMUL setting): the decode loop asks for it every token.
  const matmulEnv = globalThis.process?.env?.[MATMUL_ENV];
  const cached = made.get(backend);
  if (cached && cached.kernel === kernel && cached.matmulEnv === matmulEnv) return cached.memory;
  const memory = backendMemory(name, kernel, backend, matmulEnv);
  made.set(backend, { kernel, matmulEnv, memory });
  return memory;
}

const made = new WeakMap<tf.KernelBackend, { kernel: tf.KernelConfig; matmulEnv: string | undefined; memory: BackendMemory }>();

function backendMemory(name: string, kernel: tf.KernelConfig, backend: tf.KernelBackend, matmulEnv: string | undefined): BackendMemory {
  const matMul = (a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | null, transposeB: boolean): Float32Info =>
    kernel.kernelFunc({
      inputs: bias ? { a, b, bias } : { a, b },
      backend,
      attrs: { transposeA: false, transposeB, activation: 'linear', leakyreluAlpha: 0 },
    }) as Float32Info;
  const toTensor = (info: tf.TensorInfo) => tf.engine().makeTensorFromTensorInfo(info, backend);

  const checkAlias = (info: tf.TensorInfo, offset: number, shape: number[]) => {
    const end = offset + sizeOf(shape);
    if (info.dtype !== 'float32' || offset < 0 || end > sizeOf(info.shape)) {
      throw new RangeError(`alias: elements [${offset}, ${end}) are not inside a float32 tensor of shape [${info.shape}]`);
    }
  };

  if (name === 'wasm') {
    const wasm = backend as unknown as WasmBackendLike;
    const heapMemory = wasm.wasm.asm?.memory ?? null;
    const offset = (info: tf.TensorInfo) => wasm.dataIdMap.get(info.dataId)!.memoryOffset;
    /** a · columns [from, from + count) of b (b [k, n], or [n, k] transposed when from = 0 and count = n). */
    const ownProduct = (a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | null, transposeB: boolean, from: number, count: number | null): Float32Info => {
      const [rows, k] = a.shape.slice(-2);
      const [bRows, bCols] = b.shape.slice(-2);
      const [bk, n] = transposeB ? [bCols, bRows] : [bRows, bCols];
      const width = count ?? n;
      if (
        bk !== k || sizeOf(a.shape) !== rows * k || sizeOf(b.shape) !== bRows * bCols || from < 0 || from + width > n ||
        (bias && sizeOf(bias.shape) !== width)
      ) {
        const cols = count === null ? '' : ` (columns ${from}..${from + width - 1})`;
        throw new RangeError(`matMul: shapes [${a.shape}] · [${b.shape}]${transposeB ? 'ᵀ' : ''}${cols}${bias ? ` + [${bias.shape}]` : ''} do not fit`);
      }
      const out = wasm.makeOutput([1, rows, width], 'float32') as Float32Info;
      if (rows === 0 || width === 0) return out;
      if (k === 0) {
        const values = wasm.typedArrayFromHeap(out).fill(0);
        if (bias) for (let r = 0; r < rows; r++) values.set(wasm.typedArrayFromHeap(bias), r * width);
        return out;
      }
      const kernels = f32Kernels(heapMemory!);
      const biasAt = bias ? offset(bias) : 0;
      // Scratch only where the kernel uses it: gemm_nn past one row, gemm_nt past four (its panels).
      const scratch = rows > (transposeB ? 4 : 1) ? wasm.makeOutput([f32ScratchFloats(k, width, rows)], 'float32') : null;
      const scratchAt = scratch ? offset(scratch) : 0;
      try {
        if (transposeB) kernels.gemmNT(offset(a), rows, k, k, offset(b), n, k, biasAt, offset(out), n, scratchAt);
        else kernels.gemmNN(offset(a), rows, k, k, offset(b) + from * 4, width, n, biasAt, offset(out), width, scratchAt);
      } finally {
        if (scratch) wasm.disposeData(scratch.dataId);
      }
      return out;
    };
    const useOwn = heapMemory !== null && matmulEnv !== 'xnnpack';
    return {
      alloc: (shape) => wasm.makeOutput(shape, 'float32') as Float32Info,
      view: (info) => wasm.typedArrayFromHeap(info),
      free: (info) => void wasm.disposeData(info.dataId),
      holds: (t) => wasm.dataIdMap.has(t.dataId),
      matMul: useOwn ? (a, b, bias, transposeB) => ownProduct(a, b, bias, transposeB, 0, null) : matMul,
      matMulColumns: useOwn ? (a, b, from, count, bias) => ownProduct(a, b, bias, false, from, count) : null,
      transposedInPlace: useOwn,
      toTensor,
      // An entry in the backend's own table, as makeOutput makes for memory the C++ side allocated, but
      // released without the heap free that disposeData would do on memory this alias does not own.
      alias: (info, offset, shape) => {
        checkAlias(info, offset, shape);
        const base = wasm.dataIdMap.get(info.dataId)!;
        const id = wasm.dataIdNextNumber++;
        const dataId = { id };
        const memoryOffset = base.memoryOffset + offset * 4;
        wasm.dataIdMap.set(dataId, { id, memoryOffset, shape, dtype: 'float32', refCount: 1 });
        wasm.wasm.tfjs.registerTensor(id, sizeOf(shape), memoryOffset);
        return { dataId, shape, dtype: 'float32' };
      },
      releaseAlias: (alias) => {
        const data = wasm.dataIdMap.get(alias.dataId);
        if (!data) return;
        // Also drops the matrix kernel's operators (and packed weights) cached for this id.
        wasm.wasm.tfjs.disposeData(data.id);
        wasm.dataIdMap.delete(alias.dataId);
      },
      // Emscripten keeps the memory among the module's exports; a build without it gets no kernels of ours.
      heap: heapMemory ? { memory: heapMemory, offset } : null,
    };
  }
  const cpu = backend as unknown as CpuBackendLike;
  return {
    alloc: (shape) => cpu.makeTensorInfo(shape, 'float32', new Float32Array(shape.reduce((a, b) => a * b, 1))) as Float32Info,
    view: (info) => cpu.data.get(info.dataId).values as Float32Array,
    free: (info) => void cpu.disposeData(info.dataId),
    holds: (t) => cpu.data.has(t.dataId),
    matMul,
    matMulColumns: null,
    transposedInPlace: false,
    toTensor,
    alias: (info, offset, shape) => {
      checkAlias(info, offset, shape);
      const values = cpu.data.get(info.dataId).values as Float32Array;
      // The JavaScript backend keeps the array it is given: a subarray is a view, not a copy.
      return cpu.makeTensorInfo(shape, 'float32', values.subarray(offset, offset + sizeOf(shape))) as Float32Info;
    },
    releaseAlias: (alias) => void cpu.disposeData(alias.dataId),
    heap: null,
  };
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The same numbers seen with another shape (no copy): what the matrix kernel wants for 2-D weights. */
export function reshaped(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/**
 * The values of a float32 tensor, copied into `reuse` when it is large enough and the backend's memory is
 * readable here (wasm, cpu): a decode loop then reads each step's logits without a new array per token.
 * Elsewhere (GPU, native) it reads back as `data()` does, a new array. Either way the caller owns the result
 * (`reuse` cut to size, or a new array) and may pass it back as `reuse` once done with it.
 */
export async function readValues(t: tf.Tensor, reuse: Float32Array | null): Promise<Float32Array> {
  const memory = t.dtype === 'float32' ? currentBackendMemory() : null;
  if (!memory || !memory.holds(t)) return (await t.data()) as Float32Array;
  const out = reuse && reuse.length >= t.size ? reuse.subarray(0, t.size) : new Float32Array(t.size);
  out.set(memory.view(t).subarray(0, t.size));
  return out;
}
