/**
 * Direct access to a TensorFlow.js backend's memory and its matrix kernel, below the engine.
 *
 * Why: a GPT-2 decode step is ~100 small operations around 49 matrix products; through the engine each costs
 * 15–50 µs of bookkeeping (tensor tracking, scopes, shape checks) — 30+ ms of a ~100 ms step (measured, see
 * docs/performance-log.md). Calling the backend's own `_FusedMatMul` kernel function and computing the small
 * operations on views of the backend's memory skips that. Only the backends whose memory we know how to read
 * are supported: WebAssembly (tensors live in the module's heap) and plain JavaScript (typed arrays). Others
 * (native TensorFlow, WebGL) take the tf-op path, which is fast there anyway.
 */
import * as tf from '@tensorflow/tfjs-core';

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
  /** a [1, rows, k] @ b [1, k, n] (+ bias [n]) → [1, rows, n], through the backend's fused matrix kernel. */
  matMul(a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | null, transposeB: boolean): Float32Info;
  /** Hands a buffer over to the engine as an ordinary tensor (disposed like any other). */
  toTensor(info: tf.TensorInfo): tf.Tensor;
}

interface WasmBackendLike {
  dataIdMap: { has(dataId: tf.DataId): boolean };
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

  const matMul = (a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | null, transposeB: boolean): Float32Info =>
    kernel.kernelFunc({
      inputs: bias ? { a, b, bias } : { a, b },
      backend,
      attrs: { transposeA: false, transposeB, activation: 'linear', leakyreluAlpha: 0 },
    }) as Float32Info;
  const toTensor = (info: tf.TensorInfo) => tf.engine().makeTensorFromTensorInfo(info, backend);

  if (name === 'wasm') {
    const wasm = backend as unknown as WasmBackendLike;
    return {
      alloc: (shape) => wasm.makeOutput(shape, 'float32') as Float32Info,
      view: (info) => wasm.typedArrayFromHeap(info),
      free: (info) => void wasm.disposeData(info.dataId),
      holds: (t) => wasm.dataIdMap.has(t.dataId),
      matMul,
      toTensor,
    };
  }
  const cpu = backend as unknown as CpuBackendLike;
  return {
    alloc: (shape) => cpu.makeTensorInfo(shape, 'float32', new Float32Array(shape.reduce((a, b) => a * b, 1))) as Float32Info,
    view: (info) => cpu.data.get(info.dataId).values as Float32Array,
    free: (info) => void cpu.disposeData(info.dataId),
    holds: (t) => cpu.data.has(t.dataId),
    matMul,
    toTensor,
  };
}

/** The same numbers seen with another shape (no copy): what the matrix kernel wants for 2-D weights. */
export function reshaped(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}
