/**
 * One thread's int8 matrices and the scratch its products need: weights quantized once when placed, each
 * product copies its few input rows in, quantizes them, multiplies, and copies the result out.
 */
import { KernelArena, MAX_VECTORS, Q8_GROUP, loadQ8Kernels, quantizeWeightsQ8, type PlacedQ8, type Q8Kernels, type Q8Matrix, type WeightLayout } from './q8.js';

export interface Q8Block extends PlacedQ8 {
  /** 0: no bias. */
  biasPtr: number;
}

export class Q8Runner {
  private readonly arena: KernelArena;
  private readonly kernels: Q8Kernels;
  private input = { capacity: 0, xPtr: 0, xqPtr: 0, xsPtr: 0 };
  private output = { capacity: 0, ptr: 0 };

  constructor() {
    const memory = new WebAssembly.Memory({ initial: 16 });
    this.arena = new KernelArena(memory);
    this.kernels = loadQ8Kernels(memory);
  }

  /** Bytes of the arena (the int8 weights, their scales, biases and scratch). */
  get bytes(): number {
    return this.arena.usedBytes;
  }

  /** Quantizes a matrix (see quantizeWeightsQ8 for the layouts) into this thread's memory. */
  place(weight: Float32Array, inDim: number, outDim: number, layout: WeightLayout, bias: Float32Array | null = null): Q8Block {
    const placed = layout === 'out-in' ? this.placeRowMajor(weight, inDim, outDim) : this.placeInputMajor(weight, inDim, outDim);
    return { ...placed, biasPtr: bias ? this.arena.putF32(bias) : 0 };
  }

  /**
   * An 'out-in' matrix's groups lie one after another, which is quantize_x's own layout: the kernel quantizes it
   * straight into place, a block of rows at a time, with the same bits as quantizeWeightsQ8 (tested) and ~20×
   * faster (GPT-2's output layer: ~1.2 s in JavaScript).
   */
  private placeRowMajor(weight: Float32Array, inDim: number, outDim: number): PlacedQ8 {
    if (weight.length !== inDim * outDim || inDim % Q8_GROUP !== 0) return this.arena.putQ8(quantizeWeightsQ8(weight, inDim, outDim, 'out-in'));
    const wPtr = this.arena.allocI8(inDim * outDim);
    const wsPtr = this.arena.allocF32((inDim / Q8_GROUP) * outDim);
    const blockRows = Math.max(1, Math.floor(2 ** 14 / inDim));
    const input = this.inputRoom(blockRows * inDim);
    for (let r = 0; r < outDim; r += blockRows) {
      const block = weight.subarray(r * inDim, Math.min(outDim, r + blockRows) * inDim);
      this.arena.f32(input.xPtr, block.length).set(block);
      if (this.kernels.quantizeX(input.xPtr, block.length, wPtr + r * inDim, wsPtr + (r * inDim) / Q8_GROUP * 4)) {
        quantizeWeightsQ8(weight, inDim, outDim, 'out-in'); // throws, naming the weight
      }
    }
    return { inDim, outDim, wPtr, wsPtr };
  }

  /** out[j·outDim + r] = (x[j] · W)[r] (+ bias[r]) for the first `vectors` rows of x (1…4). */
  run(block: Q8Block, x: Float32Array, vectors: number, out: Float32Array): void {
    const { inDim, outDim } = block;
    const n = inDim * vectors;
    const input = this.inputRoom(n);
    const result = this.outputRoom(outDim * vectors);
    this.arena.f32(input.xPtr, n).set(x.subarray(0, n));
    this.kernels.quantizeX(input.xPtr, n, input.xqPtr, input.xsPtr);
    this.kernels.q8Matvec(block.wPtr, block.wsPtr, input.xqPtr, input.xsPtr, result, block.biasPtr, inDim, 0, outDim, vectors, outDim);
    out.set(this.arena.f32(result, outDim * vectors));
  }

  /**
   * An 'in-out' matrix (as GPT-2's Conv1D layers store theirs): each group of 32 rows, copied in, is quantized by
   * quantize_cols, four columns at a time, into the output-major layout; the same bits as quantizeWeightsQ8
   * (tested), ~10× faster (the fast precision's ~85 M such weights of GPT-2 small took ~2.5 s in JavaScript).
   */
  private placeInputMajor(weight: Float32Array, inDim: number, outDim: number): PlacedQ8 {
    if (weight.length !== inDim * outDim || inDim % Q8_GROUP !== 0 || outDim % 4 !== 0) {
      return this.arena.putQ8(quantizeWeightsQ8(weight, inDim, outDim, 'in-out'));
    }
    const groups = inDim / Q8_GROUP;
    const wPtr = this.arena.allocI8(inDim * outDim);
    const wsPtr = this.arena.allocF32(groups * outDim);
    const input = this.inputRoom(Q8_GROUP * outDim);
    for (let g = 0; g < groups; g++) {
      const rows = weight.subarray(g * Q8_GROUP * outDim, (g + 1) * Q8_GROUP * outDim);
      this.arena.f32(input.xPtr, rows.length).set(rows);
      if (this.kernels.quantizeCols(input.xPtr, outDim, outDim * 4, wPtr + g * Q8_GROUP, inDim, wsPtr + g * 4, groups * 4)) {
        quantizeWeightsQ8(weight, inDim, outDim, 'in-out'); // throws, naming the weight
      }
    }
    return { inDim, outDim, wPtr, wsPtr };
  }

  /** The int8 matrix a block holds (a copy): for tests and checks. */
  matrix(block: PlacedQ8): Q8Matrix {
    const { inDim, outDim } = block;
    return {
      inDim,
      outDim,
      data: this.arena.i8(block.wPtr, inDim * outDim).slice(),
      scales: this.arena.f32(block.wsPtr, (inDim / Q8_GROUP) * outDim).slice(),
    };
  }

  // The arena never frees, so scratch is made for the largest product seen (a few per model, all small).
  private inputRoom(n: number) {
    if (n > this.input.capacity) {
      const capacity = Math.ceil(n / Q8_GROUP) * Q8_GROUP;
      const placed = this.arena.allocInput(capacity, 1);
      this.input = { capacity, xPtr: placed.xPtr, xqPtr: placed.xqPtr, xsPtr: placed.xsPtr };
    }
    return this.input;
  }

  private outputRoom(n: number): number {
    if (n > this.output.capacity) this.output = { capacity: n, ptr: this.arena.allocF32(n) };
    return this.output.ptr;
  }
}

export { MAX_VECTORS as Q8_MAX_VECTORS, Q8_GROUP };
