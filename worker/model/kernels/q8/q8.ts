/**
 * int8 weights for GPT-2 decoding, and the WebAssembly SIMD kernels that multiply by them (q8.wat).
 *
 * Why: a decode step reads every weight once, so on CPUs it is bound by memory bandwidth; int8 weights with
 * one float32 scale per group of 32 read 1.125 bytes per weight instead of 4. The activations are quantized
 * the same way just before each product (`quantizeX`), so the inner loop is an exact integer dot product.
 *
 * The kernels work on byte offsets ("pointers") into one WebAssembly.Memory; `KernelArena` places weights,
 * inputs and outputs there. Layouts are described at the top of q8.wat.
 */
import { readKernelBinary } from '../kernel-binary.js';
import { nativeOn } from '../native/native.js';

/** Number of consecutive weights (along the input dimension) that share one scale. */
export const Q8_GROUP = 32;
/** Largest batch of input vectors one kernel call multiplies (the kernels keep one accumulator each). */
export const MAX_VECTORS = 4;

/** A weight matrix in int8, output-row-major: row r holds the inDim weights that produce output r. */
export interface Q8Matrix {
  inDim: number;
  outDim: number;
  /** data[r * inDim + i] */
  data: Int8Array;
  /** scales[r * inDim / Q8_GROUP + g]: weight ≈ data * scale within group g of row r. */
  scales: Float32Array;
}

/**
 * 'in-out': weight[i * outDim + o], as GPT-2's Conv1D layers store them (x @ W).
 * 'out-in': weight[o * inDim + i], as the tied lm head (wte, [vocab, C]) is stored.
 */
export type WeightLayout = 'in-out' | 'out-in';

/** Below this, 127 / max overflows float32: such groups quantize to zero (here and in quantize_x). */
const SMALLEST_SCALED_MAX = 2 ** -120;

/** Rounds half-way cases to even, like WebAssembly's f32x4.nearest, so JavaScript and kernels agree. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v); // half-way cases go up
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

/**
 * Symmetric per-group int8 quantization of a weight matrix: in each group of 32 weights of an output row,
 * scale = max|w| / 127 and q = round(w · 127 / max|w|), computed in float32 exactly as quantize_x does, so that
 * a vector quantized here and by the kernel are the same bits.
 */
export function quantizeWeightsQ8(weight: Float32Array, inDim: number, outDim: number, layout: WeightLayout): Q8Matrix {
  checkDims(inDim, outDim);
  if (weight.length !== inDim * outDim) {
    throw new Error(`quantizeWeightsQ8: weight has ${weight.length} values, expected inDim × outDim = ${inDim} × ${outDim}`);
  }
  const groups = inDim / Q8_GROUP;
  const data = new Int8Array(inDim * outDim);
  const scales = new Float32Array(outDim * groups);
  // (row, i) → index into `weight`. For 'in-out' the 32 reads of a group are 32 rows of weight apart; walking
  // the output rows in order keeps those 32 rows' cache lines hot for the next 15 outputs.
  const rowStride = layout === 'out-in' ? inDim : 1;
  const inStride = layout === 'out-in' ? 1 : outDim;
  for (let g = 0; g < groups; g++) {
    const i0 = g * Q8_GROUP;
    for (let r = 0; r < outDim; r++) {
      const scale = quantizeGroup(weight, r * rowStride + i0 * inStride, inStride, data, r * inDim + i0);
      if (!Number.isFinite(scale)) throw new Error(`quantizeWeightsQ8: non-finite weight in output row ${r}, inputs ${i0}..${i0 + Q8_GROUP - 1}`);
      scales[r * groups + g] = scale;
    }
  }
  return { inDim, outDim, data, scales };
}

/**
 * Quantizes the Q8_GROUP values of `src` from index `from`, `stride` apart, into `codes` from `at`, exactly as
 * quantize_x does (float32 steps, ties to even); returns the group's scale: 0 for a group below 2^-120 (its
 * codes 0), not finite when a value is not.
 */
export function quantizeGroup(src: ArrayLike<number>, from: number, stride: number, codes: Int8Array, at: number): number {
  let max = 0;
  for (let k = 0; k < Q8_GROUP; k++) max = Math.max(max, Math.abs(src[from + k * stride]));
  if (!Number.isFinite(max)) return max;
  if (max < SMALLEST_SCALED_MAX) {
    codes.fill(0, at, at + Q8_GROUP);
    return 0;
  }
  const inv = Math.fround(127 / max);
  for (let k = 0; k < Q8_GROUP; k++) codes[at + k] = roundHalfEven(Math.fround(src[from + k * stride] * inv));
  return Math.fround(max / 127);
}

/** The float32 weights a Q8Matrix stands for, output-row-major ([outDim, inDim]). */
export function dequantizeQ8(m: Q8Matrix): Float32Array {
  const out = new Float32Array(m.inDim * m.outDim);
  for (let i = 0; i < out.length; i++) out[i] = m.data[i] * m.scales[Math.floor(i / Q8_GROUP)];
  return out;
}

/** Typed calls into q8.wasm. All pointers are byte offsets into `memory`; see q8.wat for the layouts. */
export interface Q8Kernels {
  readonly memory: WebAssembly.Memory;
  /** Whether q8Matvec runs on the native kernel (native/gemm.c: the same bits), not q8.wasm's. */
  readonly native: boolean;
  /**
   * xq (n int8) and xs (n/32 float32) ← quantized x (n float32); n a multiple of 32. nX input vectors laid
   * out one after another are quantized by one call with n = inDim · nX (groups never straddle vectors).
   * Returns whether a value was NaN or infinite.
   */
  quantizeX(xPtr: number, n: number, xqPtr: number, xsPtr: number): boolean;
  /**
   * One group of 32 rows of an 'in-out' matrix (n columns, a multiple of 4, rows ldwBytes apart at wPtr) into
   * output-major codes (column o's 32 at codesPtr + o · codeStride) and scales (at scalesPtr + o · scaleStride),
   * by quantizeX's rule. Returns whether a value was NaN or infinite.
   */
  quantizeCols(wPtr: number, n: number, ldwBytes: number, codesPtr: number, codeStride: number, scalesPtr: number, scaleStride: number): boolean;
  /**
   * y[j * outDim + r] = Σ_g ws[r][g]·xs[j][g]·(w[r][g] · xq[j][g]) (+ bias[r]) for r in [rowStart, rowEnd),
   * j < nX. biasPtr 0 means no bias.
   */
  q8Matvec(
    wPtr: number, wsPtr: number, xqPtr: number, xsPtr: number, yPtr: number, biasPtr: number,
    inDim: number, rowStart: number, rowEnd: number, nX: number, outDim: number,
  ): void;
  /** y[j * outDim + r] = Σ_i w[r * inDim + i]·x[j * inDim + i] (+ bias[r]) in float32, same row range rules. */
  f32Matvec(
    wPtr: number, yPtr: number, xPtr: number, biasPtr: number,
    inDim: number, rowStart: number, rowEnd: number, nX: number, outDim: number,
  ): void;
}

interface Q8Exports {
  quantize_x(x: number, n: number, xq: number, xs: number): number;
  quantize_cols(w: number, n: number, ldw: number, codes: number, codeStride: number, scales: number, scaleStride: number): number;
  q8_matvec(w: number, ws: number, xq: number, xs: number, y: number, bias: number,
    inDim: number, rowStart: number, rowEnd: number, nX: number, outDim: number): void;
  f32_matvec(w: number, y: number, x: number, bias: number,
    inDim: number, rowStart: number, rowEnd: number, nX: number, outDim: number): void;
}

let compiled: WebAssembly.Module | undefined;

/** q8.wasm, compiled once per thread (assembled from q8.wat by scripts/build-kernels.mjs). */
function kernelModule(): WebAssembly.Module {
  // Synchronous on purpose: the module is ~6.5 KB and this runs in Node / worker threads, where synchronous
  // compilation has no size limit; callers get kernels without an await in their constructors. Packaged, the
  // binary is read from app.asar.unpacked (see kernel-binary.ts).
  compiled ??= new WebAssembly.Module(readKernelBinary(new URL('./q8.wasm', import.meta.url)));
  return compiled;
}

/**
 * Instantiates the kernels on a memory that holds the weights, inputs and outputs. The module imports a
 * non-shared memory; sharing one between worker threads would need `shared` (and a maximum) on q8.wat's
 * import and the threads feature in scripts/build-kernels.mjs.
 */
export function loadQ8Kernels(memory: WebAssembly.Memory): Q8Kernels {
  const exports = new WebAssembly.Instance(kernelModule(), { env: { memory } }).exports as unknown as Q8Exports;
  // The checks are a few comparisons against products of ≥ 24k multiply-adds; without them a wrong nX or
  // inDim computes garbage silently (out-of-memory pointers trap on their own).
  const checkProduct = (inDim: number, rowStart: number, rowEnd: number, nX: number, outDim: number) => {
    checkDims(inDim, outDim);
    if (!(Number.isInteger(nX) && nX >= 1 && nX <= MAX_VECTORS)) throw new Error(`matvec: nX must be 1..${MAX_VECTORS}, got ${nX}`);
    if (!(Number.isInteger(rowStart) && Number.isInteger(rowEnd) && rowStart >= 0 && rowStart <= rowEnd && rowEnd <= outDim)) {
      throw new Error(`matvec: row range [${rowStart}, ${rowEnd}) is not within [0, ${outDim})`);
    }
  };
  // The native kernel where this machine has it: the same bits with half the instructions (native/gemm.c).
  const native = nativeOn(memory)?.q8Matvec;
  const matvec = native ?? exports.q8_matvec;
  return {
    memory,
    native: native !== undefined,
    quantizeX(xPtr, n, xqPtr, xsPtr) {
      if (!(Number.isInteger(n) && n >= 0 && n % Q8_GROUP === 0)) throw new Error(`quantizeX: n must be a multiple of ${Q8_GROUP}, got ${n}`);
      return exports.quantize_x(xPtr, n, xqPtr, xsPtr) !== 0;
    },
    quantizeCols(wPtr, n, ldwBytes, codesPtr, codeStride, scalesPtr, scaleStride) {
      if (!(Number.isInteger(n) && n > 0 && n % 4 === 0)) throw new Error(`quantizeCols: n must be a positive multiple of 4, got ${n}`);
      return exports.quantize_cols(wPtr, n, ldwBytes, codesPtr, codeStride, scalesPtr, scaleStride) !== 0;
    },
    q8Matvec(wPtr, wsPtr, xqPtr, xsPtr, yPtr, biasPtr, inDim, rowStart, rowEnd, nX, outDim) {
      checkProduct(inDim, rowStart, rowEnd, nX, outDim);
      matvec(wPtr, wsPtr, xqPtr, xsPtr, yPtr, biasPtr, inDim, rowStart, rowEnd, nX, outDim);
    },
    f32Matvec(wPtr, yPtr, xPtr, biasPtr, inDim, rowStart, rowEnd, nX, outDim) {
      checkProduct(inDim, rowStart, rowEnd, nX, outDim);
      exports.f32_matvec(wPtr, yPtr, xPtr, biasPtr, inDim, rowStart, rowEnd, nX, outDim);
    },
  };
}

function checkDims(inDim: number, outDim: number): void {
  if (!(Number.isInteger(inDim) && inDim > 0 && inDim % Q8_GROUP === 0)) {
    throw new Error(`inDim must be a positive multiple of ${Q8_GROUP}, got ${inDim}`);
  }
  if (!(Number.isInteger(outDim) && outDim > 0)) throw new Error(`outDim must be a positive integer, got ${outDim}`);
}

/** Where a Q8Matrix lives in an arena's memory. */
export interface PlacedQ8 {
  inDim: number;
  outDim: number;
  wPtr: number;
  wsPtr: number;
}

/** Pointers for nX input vectors of inDim values and their quantized form. */
export interface PlacedInput {
  inDim: number;
  nX: number;
  xPtr: number;
  xqPtr: number;
  xsPtr: number;
}

const PAGE_BYTES = 65536;
/** SIMD loads are fastest aligned; 16 bytes is one v128. */
const ALIGN = 16;

/**
 * Lays out matrices and vectors one after another in a WebAssembly.Memory, growing it as needed. Nothing is
 * ever freed: weights are placed once at load time, and the per-step buffers (x, y) are allocated once and
 * reused. Pointer 0 is never handed out, because the kernels read a bias pointer of 0 as "no bias".
 *
 * Views (f32, i8) are made fresh on each call: growing the memory detaches earlier ones.
 */
export class KernelArena {
  readonly memory: WebAssembly.Memory;
  private next: number;

  constructor(memory: WebAssembly.Memory, firstByte = ALIGN) {
    this.memory = memory;
    this.next = alignUp(Math.max(firstByte, ALIGN));
  }

  /** Bytes handed out so far (including the reserved start). */
  get usedBytes(): number {
    return this.next;
  }

  /** A 16-byte-aligned block of `bytes` bytes (contents unspecified if the memory was used before). */
  alloc(bytes: number): number {
    if (!(Number.isInteger(bytes) && bytes >= 0)) throw new Error(`KernelArena.alloc: bad size ${bytes}`);
    const ptr = this.next;
    const end = alignUp(ptr + bytes);
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE_BYTES);
      try {
        this.memory.grow(pages);
      } catch (error) {
        throw new Error(`KernelArena: cannot grow the memory to ${(end / 2 ** 20).toFixed(0)} MiB (${(error as Error).message})`, { cause: error });
      }
    }
    this.next = end;
    return ptr;
  }

  allocF32(length: number): number {
    return this.alloc(length * 4);
  }

  allocI8(length: number): number {
    return this.alloc(length);
  }

  /** A view of `length` float32 values at ptr (valid until the memory next grows). */
  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }

  i8(ptr: number, length: number): Int8Array {
    return new Int8Array(this.memory.buffer, ptr, length);
  }

  /** Copies values into the arena; returns their pointer. */
  putF32(values: Float32Array): number {
    const ptr = this.allocF32(values.length);
    this.f32(ptr, values.length).set(values);
    return ptr;
  }

  putI8(values: Int8Array): number {
    const ptr = this.allocI8(values.length);
    this.i8(ptr, values.length).set(values);
    return ptr;
  }

  /** Copies a quantized matrix (values, then scales) into the arena. */
  putQ8(m: Q8Matrix): PlacedQ8 {
    return { inDim: m.inDim, outDim: m.outDim, wPtr: this.putI8(m.data), wsPtr: this.putF32(m.scales) };
  }

  /** Room for nX input vectors of inDim float32 values and their int8 form (for quantizeX, then q8Matvec). */
  allocInput(inDim: number, nX: number): PlacedInput {
    checkDims(inDim, 1);
    return {
      inDim,
      nX,
      xPtr: this.allocF32(inDim * nX),
      xqPtr: this.allocI8(inDim * nX),
      xsPtr: this.allocF32((inDim / Q8_GROUP) * nX),
    };
  }
}

function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
