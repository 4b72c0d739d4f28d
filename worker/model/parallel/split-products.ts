/**
 * The matrix products of a GPT2Model on two cores: a partner thread (partner-thread.ts) holds the second
 * block of rows of every weight matrix and multiplies its share while this thread does the first.
 *
 * The blocks are rows of the matrix as stored, so this thread's share is an alias of the model's own
 * weights (no copy, see BackendMemory.alias) and only the partner's share is copied:
 * - a weight used as stored, x[R, k] · W[k, n]: rows of W are a split of k, so each side multiplies its
 *   columns of x and the two partial sums are added (this side adds the bias);
 * - a weight used transposed (the tied output layer, wte [vocab, C]): rows of W are a split of the outputs,
 *   so each side makes its columns of the result.
 * The model keeps its whole weights, so any product can still run here alone: when it is too small to be
 * worth a hand-off, and for good if the partner fails or stops answering.
 */
import os from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type * as tf from '@tensorflow/tfjs-core';
import { threadEntry } from '../../thread-entry.js';
import type { BackendMemory, Float32Info } from '../kernels/backend-memory.js';
import { geluTanhInPlace, reluInPlace } from '../kernels/host-ops.js';
import {
  CONTROL_SLOTS,
  Job,
  Slot,
  State,
  type Activation,
  type PartnerCommand,
  type PartnerMlp,
  type PartnerReport,
  type PartnerWeight,
  type PartnerWorkerData,
} from './protocol.js';

/** `INKLING_THREADS=1` keeps the engine on one core; unset, it uses two where the machine has them. */
export const THREADS_ENV = 'INKLING_THREADS';

export function wantedThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[THREADS_ENV];
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  if (raw === undefined || raw === '') return Math.min(2, cores);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${THREADS_ENV} must be a positive integer, got "${raw}"`);
  return Math.min(2, n);
}

/**
 * Products smaller than this (multiply-adds) run on this thread alone: handing off costs ~20–40 µs (two
 * futex wakes, the input and output copies), what a product of this size takes on one core.
 */
const MIN_SPLIT_MACS = 1 << 18;
/**
 * A job the partner has not finished by then means it is gone (the largest product takes well under 1 s).
 * Waiting is the only way to tell while this thread blocks: a dead worker's exit event needs the event loop.
 */
const JOB_TIMEOUT_MS = 20_000;
/** Polls of the state before sleeping: the partner usually finishes within microseconds of this thread. */
const SPIN_POLLS = 2_000;

export interface SplitWeight {
  /** The matrix [rows, cols] as the model holds it. */
  weight: tf.TensorInfo;
  transposed: boolean;
  /** Whether a bias goes with it (only weights used as stored may have one: it is added on this side). */
  hasBias: boolean;
}

/** A GPT-2 MLP, split by hidden units: each thread runs its half end to end and the halves' sums are added. */
export interface SplitMlp {
  /** c_fc [width, hidden] and its bias. */
  fc: tf.TensorInfo;
  fcBias: tf.TensorInfo;
  /** c_proj [hidden, width] and its bias. */
  proj: tf.TensorInfo;
  projBias: tf.TensorInfo;
  activation: Activation;
}

interface MlpEntry {
  width: number;
  hidden: number;
  /** This thread's hidden units [0, split). */
  split: number;
  activate: (x: Float32Array) => void;
  /** Columns [0, split) of c_fc: a copy, since columns of a row-major matrix are not contiguous. */
  fcMine: Float32Info;
  fcBiasMine: Float32Info;
  /** Rows [0, split) of c_proj (alias). */
  projMine: Float32Info;
  projBias: tf.TensorInfo;
}

export interface SplitProductsOptions {
  /** The partner's script (tests start a faulty one). */
  entry?: URL;
  jobTimeoutMs?: number;
}

interface Entry {
  whole: tf.TensorInfo;
  /** Rows [0, split) of the weight, this thread's share. */
  mine: Float32Info | null;
  split: number;
  rows: number;
  cols: number;
  transposed: boolean;
}

export class SplitProducts {
  private numbers: Float32Array = new Float32Array(0);
  private outputOffset = 0;
  private lostReason: string | null = null;
  private readonly ctrl: Int32Array;

  private constructor(
    private readonly memory: BackendMemory,
    private readonly entries: Entry[],
    private readonly mlps: MlpEntry[],
    private readonly worker: Worker,
    private readonly port: MessagePort,
    control: SharedArrayBuffer,
    private readonly jobTimeoutMs: number,
  ) {
    this.ctrl = new Int32Array(control);
    worker.on('error', (error) => this.lose(`the partner thread failed: ${error.message}`));
    worker.on('exit', (code) => this.lose(`the partner thread exited (code ${code})`));
  }

  /**
   * Starts the partner with its share of each weight (in the model's memory, which must be the wasm
   * backend's) and resolves once it holds them.
   */
  static async start(memory: BackendMemory, weights: SplitWeight[], mlpsToSplit: SplitMlp[], options: SplitProductsOptions = {}): Promise<SplitProducts> {
    const entries: Entry[] = [];
    const shares: PartnerWeight[] = [];
    for (const { weight, transposed, hasBias } of weights) {
      const [rows, cols] = weight.shape.slice(-2);
      const splittable = rows >= 2 && !(transposed && hasBias);
      const split = splittable ? Math.floor(rows / 2) : rows;
      entries.push({ whole: weight, mine: null, split, rows, cols, transposed });
      // An empty share keeps indices aligned for a weight that is never split.
      shares.push({ rows: rows - split, cols, transposed, values: memory.view(weight).slice(split * cols, rows * cols) });
    }

    const mlpShares = mlpsToSplit.map((m) => mlpShare(memory, m));

    const control = new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT);
    const { port1, port2 } = new MessageChannel();
    const { url, entry } = threadEntry(options.entry ?? new URL('./partner-thread.js', import.meta.url));
    const workerData: PartnerWorkerData = { entry, control, port: port2 };
    const worker = new Worker(url, { workerData, transferList: [port2] });
    worker.unref();
    const transfers = [
      ...shares.map((s) => s.values.buffer),
      ...mlpShares.flatMap((m) => [m.fc.buffer, m.fcBias.buffer, m.proj.buffer]),
    ];
    port1.postMessage({ type: 'weights', weights: shares, mlps: mlpShares } satisfies PartnerCommand, transfers);

    try {
      await new Promise<void>((resolve, reject) => {
        const fail = (message: string) => reject(new Error(`the second engine thread did not start: ${message}`));
        port1.once('message', (report: PartnerReport) => (report.type === 'ready' ? resolve() : fail(report.message)));
        worker.once('error', (error) => fail(error.message));
        worker.once('exit', (code) => fail(`it exited with code ${code}`));
      });
    } catch (error) {
      void worker.terminate();
      port1.close();
      throw error;
    }
    worker.removeAllListeners();
    port1.removeAllListeners();
    port1.unref();
    for (const e of entries) if (e.split < e.rows) e.mine = memory.alias(e.whole, 0, [1, e.split, e.cols]);
    const mlps = mlpsToSplit.map((m) => mlpEntry(memory, m));
    return new SplitProducts(memory, entries, mlps, worker, port1, control, options.jobTimeoutMs ?? JOB_TIMEOUT_MS);
  }

  /** Why the partner is no longer used (null while it is). */
  get lost(): string | null {
    return this.lostReason;
  }

  /** x [1, R, k] times weight `index` (+ bias) → [1, R, n], as `BackendMemory.matMul`. */
  matMul(x: tf.TensorInfo, index: number, bias: tf.TensorInfo | null): Float32Info {
    const { memory } = this;
    const e = this.entries[index];
    const rows = x.shape[1];
    if (this.lostReason || !e.mine || rows * e.rows * e.cols < MIN_SPLIT_MACS) {
      return memory.matMul(x, reshape3d(e.whole), bias, e.transposed);
    }
    const k = e.transposed ? e.cols : e.rows;
    const theirK = e.transposed ? k : e.rows - e.split;
    const theirN = e.transposed ? e.rows - e.split : e.cols;
    if (!this.ensureRoom(rows * theirK, rows * theirN)) return memory.matMul(x, reshape3d(e.whole), bias, e.transposed);

    // Post the partner's input first, so that both sides work at once.
    const xs = memory.view(x);
    if (e.transposed) this.numbers.set(xs.subarray(0, rows * k));
    else for (let r = 0; r < rows; r++) this.numbers.set(xs.subarray(r * k + e.split, (r + 1) * k), r * theirK);
    this.postJob(Job.product, index, rows);

    let ours: Float32Info;
    if (e.transposed) {
      ours = memory.matMul(x, e.mine, null, true);
    } else {
      const left = memory.alloc([1, rows, e.split]);
      try {
        const [from, to] = [memory.view(x), memory.view(left)];
        for (let r = 0; r < rows; r++) to.set(from.subarray(r * k, r * k + e.split), r * e.split);
        ours = memory.matMul(left, e.mine, bias, false);
      } finally {
        memory.free(left);
      }
    }

    if (!this.finish()) {
      memory.free(ours);
      return memory.matMul(x, reshape3d(e.whole), bias, e.transposed);
    }
    const theirs = this.numbers.subarray(this.outputOffset, this.outputOffset + rows * theirN);
    if (!e.transposed) {
      const sum = memory.view(ours);
      for (let i = 0; i < sum.length; i++) sum[i] += theirs[i];
      return ours;
    }
    const n = e.rows;
    const out = memory.alloc([1, rows, n]);
    const [mine, all] = [memory.view(ours), memory.view(out)];
    for (let r = 0; r < rows; r++) {
      all.set(mine.subarray(r * e.split, (r + 1) * e.split), r * n);
      all.set(theirs.subarray(r * theirN, (r + 1) * theirN), r * n + e.split);
    }
    memory.free(ours);
    return out;
  }

  /**
   * MLP `layer` of x [1, R, width] → [1, R, width] (both biases added), or null when it should run on this
   * thread alone (too small, or the partner is gone): the caller then runs it the ordinary way.
   */
  mlp(x: tf.TensorInfo, layer: number): Float32Info | null {
    const m = this.mlps[layer];
    const rows = x.shape[1];
    if (this.lostReason || rows * m.width * m.hidden < MIN_SPLIT_MACS) return null;
    if (!this.ensureRoom(rows * m.width, rows * m.width)) return null;
    const { memory } = this;
    this.numbers.set(memory.view(x).subarray(0, rows * m.width));
    this.postJob(Job.mlp, layer, rows);

    const hidden = memory.matMul(x, m.fcMine, m.fcBiasMine, false);
    let ours: Float32Info;
    try {
      m.activate(memory.view(hidden));
      ours = memory.matMul(hidden, m.projMine, m.projBias, false);
    } finally {
      memory.free(hidden);
    }
    if (!this.finish()) {
      memory.free(ours);
      return null;
    }
    const [sum, theirs] = [memory.view(ours), this.numbers.subarray(this.outputOffset, this.outputOffset + rows * m.width)];
    for (let i = 0; i < sum.length; i++) sum[i] += theirs[i];
    return ours;
  }

  /** Stops the partner and gives back the aliases and copies (before the model frees its weights). */
  dispose(): void {
    for (const e of this.entries) {
      if (e.mine) this.memory.releaseAlias(e.mine);
      e.mine = null;
    }
    for (const m of this.mlps.splice(0)) {
      this.memory.free(m.fcMine);
      this.memory.releaseAlias(m.fcBiasMine);
      this.memory.releaseAlias(m.projMine);
    }
    if (!this.lostReason) this.lostReason = 'stopped';
    Atomics.store(this.ctrl, Slot.state, State.stop);
    Atomics.notify(this.ctrl, Slot.state);
    void this.worker.terminate();
    this.port.close();
  }

  private postJob(kind: number, index: number, rows: number): void {
    Atomics.store(this.ctrl, Slot.kind, kind);
    Atomics.store(this.ctrl, Slot.weight, index);
    Atomics.store(this.ctrl, Slot.rows, rows);
    this.post(State.job);
  }

  private post(state: number): void {
    Atomics.store(this.ctrl, Slot.state, state);
    Atomics.notify(this.ctrl, Slot.state);
  }

  /** Waits for the posted job; false (and the partner given up) if it failed or never answered. */
  private finish(): boolean {
    const { ctrl } = this;
    let state = Atomics.load(ctrl, Slot.state);
    for (let i = 0; i < SPIN_POLLS && (state === State.job || state === State.buffers); i++) state = Atomics.load(ctrl, Slot.state);
    const deadline = performance.now() + this.jobTimeoutMs;
    while (state === State.job || state === State.buffers) {
      const left = deadline - performance.now();
      if (left <= 0) {
        this.lose(`the partner thread did not answer within ${this.jobTimeoutMs / 1000} s`);
        return false;
      }
      Atomics.wait(ctrl, Slot.state, state, left);
      state = Atomics.load(ctrl, Slot.state);
    }
    if (state !== State.done) {
      const report = receiveMessageOnPort(this.port)?.message as PartnerReport | undefined;
      this.lose(`the partner thread failed: ${report?.type === 'failed' ? report.message : 'no reason given'}`);
      return false;
    }
    Atomics.store(ctrl, Slot.state, State.idle);
    return true;
  }

  /** Grows the shared numbers to hold an input and an output of these sizes. */
  private ensureRoom(input: number, output: number): boolean {
    const [inputRoom, outputRoom] = [this.outputOffset, this.numbers.length - this.outputOffset];
    if (input <= inputRoom && output <= outputRoom) return true;
    // Doubling, so that a growing prompt reallocates a few times, not at every step.
    const newInput = Math.max(input, 2 * inputRoom, 1 << 16);
    const newOutput = Math.max(output, 2 * outputRoom, 1 << 16);
    const numbers = new SharedArrayBuffer((newInput + newOutput) * Float32Array.BYTES_PER_ELEMENT);
    this.port.postMessage({ type: 'buffers', numbers, outputOffset: newInput } satisfies PartnerCommand);
    this.post(State.buffers);
    if (!this.finish()) return false;
    this.numbers = new Float32Array(numbers);
    this.outputOffset = newInput;
    return true;
  }

  private lose(reason: string): void {
    if (this.lostReason) return;
    this.lostReason = reason;
    void this.worker.terminate();
  }
}

function mlpHalves(memory: BackendMemory, m: SplitMlp): { width: number; hidden: number; split: number } {
  const [width, hidden] = m.fc.shape.slice(-2);
  return { width, hidden, split: Math.floor(hidden / 2) };
}

/** The partner's half: columns [split, hidden) of c_fc and its bias, rows [split, hidden) of c_proj. */
function mlpShare(memory: BackendMemory, m: SplitMlp): PartnerMlp {
  const { width, hidden, split } = mlpHalves(memory, m);
  const theirs = hidden - split;
  const fc = new Float32Array(width * theirs);
  const all = memory.view(m.fc);
  for (let r = 0; r < width; r++) fc.set(all.subarray(r * hidden + split, (r + 1) * hidden), r * theirs);
  return {
    width,
    hidden: theirs,
    activation: m.activation,
    fc,
    fcBias: memory.view(m.fcBias).slice(split, hidden),
    proj: memory.view(m.proj).slice(split * width, hidden * width),
  };
}

function mlpEntry(memory: BackendMemory, m: SplitMlp): MlpEntry {
  const { width, hidden, split } = mlpHalves(memory, m);
  const fcMine = memory.alloc([1, width, split]);
  const [all, mine] = [memory.view(m.fc), memory.view(fcMine)];
  for (let r = 0; r < width; r++) mine.set(all.subarray(r * hidden, r * hidden + split), r * split);
  return {
    width,
    hidden,
    split,
    activate: m.activation === 'relu' ? reluInPlace : geluTanhInPlace,
    fcMine,
    fcBiasMine: memory.alias(m.fcBias, 0, [split]),
    projMine: memory.alias(m.proj, 0, [1, split, width]),
    projBias: m.projBias,
  };
}

function reshape3d(weight: tf.TensorInfo): tf.TensorInfo {
  return { dataId: weight.dataId, shape: [1, ...weight.shape.slice(-2)], dtype: weight.dtype };
}
