/**
 * The contract between a GPT2Model's thread and its product partner (partner-thread.ts): one job at a time,
 * posted through a small shared Int32Array and woken with Atomics; weights and numbers lie in a shared
 * WebAssembly.Memory that both threads see, addressed by byte offsets: the backend's own heap where it is
 * shared (the weights read in place), else an arena holding a copy of the partner's share (shared-place.ts).
 *
 * Why not postMessage per product: a decode step has ~50 products of a few hundred microseconds each; a
 * message round trip through both event loops costs about as much as the product. A futex wake costs ~10 µs.
 */

/** Slots of the control array. */
export const Slot = {
  state: 0,
  /** Which weight block (index into the list sent at start) the job multiplies by. */
  weight: 1,
  /** Rows of the job's input. */
  rows: 2,
  /** What to do: a `Job` value. */
  kind: 3,
  /** Job.columns only: byte offsets of the input, the output and the bias (0: none), and the first column. */
  input: 4,
  output: 5,
  bias: 6,
  from: 7,
} as const;

export const Job = {
  /** input · weight block `Slot.weight`, in float32. */
  product: 0,
  /** The partner's half of MLP `Slot.weight`: activation(input · fc + bias) · proj, a partial sum. */
  mlp: 1,
  /** The same two with the int8 weights (a decode step of at most 4 rows in the "fast" precision). */
  productFast: 2,
  mlpFast: 3,
  /**
   * input · columns [Slot.from, cols) of the whole weight `Slot.weight` (+ bias), written into those columns of
   * the output: a prompt's product split by outputs, where the partner sees the model's weights, input and
   * output in place (the backend's shared heap). Each side then runs the full depth k, and nothing is added.
   */
  columns: 4,
  /**
   * Heads [from, n_head) of a step's attention (kernels/attention/heads.ts attendHeads), in place on the
   * backend's shared heap: places and shape in the slots after the named ones (writeAttentionJob).
   */
  attention: 5,
} as const;

/**
 * Job.attention's arguments, from slot ARGS_AT on: the places (byte offsets), the shape's integers, then the
 * scale (float32 bits), the first head and the way (1: a decode step's).
 */
const PLACES = ['qkv', 'keys', 'values', 'out', 'scores', 'scratch'] as const;
const SHAPE = ['batch', 'nHead', 'headDim', 'capacity', 'position', 'time'] as const;
const ARGS_AT = 8;
const SHAPE_AT = ARGS_AT + PLACES.length;
const SCALE_AT = SHAPE_AT + SHAPE.length;
const FROM_AT = SCALE_AT + 1;
const DECODE_AT = FROM_AT + 1;
export const CONTROL_SLOTS = DECODE_AT + 1;

/** Writes a Job.attention's arguments (before it is posted). */
export function writeAttentionJob(ctrl: Int32Array, job: AttentionJob): void {
  for (let i = 0; i < PLACES.length; i++) Atomics.store(ctrl, ARGS_AT + i, job.at[PLACES[i]]);
  for (let i = 0; i < SHAPE.length; i++) Atomics.store(ctrl, SHAPE_AT + i, job.shape[SHAPE[i]]);
  Atomics.store(ctrl, SCALE_AT, floatBits(job.shape.scale));
  Atomics.store(ctrl, FROM_AT, job.from);
  Atomics.store(ctrl, DECODE_AT, job.mode === 'decode' ? 1 : 0);
}

/** Reads what writeAttentionJob wrote. */
export function readAttentionJob(ctrl: Int32Array): AttentionJob {
  const at = {} as AttentionPlaces;
  for (let i = 0; i < PLACES.length; i++) at[PLACES[i]] = Atomics.load(ctrl, ARGS_AT + i);
  const shape = { scale: bitsFloat(Atomics.load(ctrl, SCALE_AT)) } as DecodeAttentionShape;
  for (let i = 0; i < SHAPE.length; i++) shape[SHAPE[i]] = Atomics.load(ctrl, SHAPE_AT + i);
  return { at, shape, from: Atomics.load(ctrl, FROM_AT), mode: Atomics.load(ctrl, DECODE_AT) ? 'decode' : 'prompt' };
}

const bits = new DataView(new ArrayBuffer(4));
const floatBits = (x: number) => (bits.setFloat32(0, x), bits.getInt32(0));
const bitsFloat = (n: number) => (bits.setInt32(0, n), bits.getFloat32(0));

/** Values of `Slot.state`. Only the thread that does not own a state writes the next one. */
export const State = {
  /** Nothing posted; the partner sleeps. */
  idle: 0,
  /** A job is posted; the partner owns the input/output space until it writes done or failed. */
  job: 1,
  done: 2,
  /** The job threw; the reason is on the port. */
  failed: 3,
  /** Exit the loop. */
  stop: 4,
  /** New input/output places on the port: take them, then answer done. */
  buffers: 5,
} as const;

/** One block of rows of a weight matrix [rows, cols], the partner's share of a product, at byte offset `at`. */
export interface PartnerWeight {
  rows: number;
  cols: number;
  /** Multiply by its transpose (x · Wᵀ), as for a tied output layer stored [vocab, width]. */
  transposed: boolean;
  at: number;
  /** Floats from one row to the next (cols: the rows lie one after another). */
  ld: number;
  /** The whole matrix [rows, cols] where the partner reads it in place (Job.columns), else null. */
  whole: { at: number; rows: number } | null;
  /** Also keep it in int8 for Job.productFast. */
  int8: boolean;
}

export interface PartnerWorkerData {
  /** The tsx bootstrap's entry (development only; see ../../thread-entry.ts). */
  entry?: string;
  control: SharedArrayBuffer;
  port: import('node:worker_threads').MessagePort;
}

import type { Activation } from '../kernels/f32/f32.js';
import type { AttentionMode, AttentionPlaces } from '../kernels/attention/heads.js';
import type { DecodeAttentionShape } from '../kernels/host-ops.js';

export type { Activation };

/** Job.attention: heads [from, shape.nHead) at the places `at`, the prompt's way or the decode step's. */
export interface AttentionJob {
  at: AttentionPlaces;
  shape: DecodeAttentionShape;
  from: number;
  mode: AttentionMode;
}

/**
 * The partner's half of a GPT-2 MLP: the second half of its hidden units, i.e. columns of c_fc (with their
 * bias) and the matching rows of c_proj, at byte offsets. Its hidden values never leave the partner's space.
 */
export interface PartnerMlp {
  width: number;
  hidden: number;
  activation: Activation;
  /** [width, hidden], rows `fcLd` floats apart (the model's own c_fc, read in place, is wider than this half). */
  fcAt: number;
  fcLd: number;
  fcBiasAt: number;
  /** [hidden, width] */
  projAt: number;
}

/** Where a job's numbers go (byte offsets), for jobs of up to `rows` input rows. */
export interface PartnerIo {
  rows: number;
  inputAt: number;
  outputAt: number;
  /** An MLP's hidden values. */
  hiddenAt: number;
  /** The kernels' scratch for jobs of up to `rows` rows (kernels/f32: f32ScratchFloats). */
  scratchAt: number;
}

/** Host → partner on the port. */
export type PartnerCommand =
  /** `fast`: also keep the MLPs in int8 for Job.mlpFast (each weight says whether it has an int8 copy). */
  | { type: 'weights'; memory: WebAssembly.Memory; weights: PartnerWeight[]; mlps: PartnerMlp[]; fast: boolean; io: PartnerIo }
  /** Larger input/output places (the memory may have grown). */
  | { type: 'buffers'; io: PartnerIo };

/** Partner → host on the port. */
export type PartnerReport = { type: 'ready' } | { type: 'failed'; message: string };
