/**
 * The model thread's end of the partner (partner-thread.ts): starts the thread with its weights, posts one
 * job at a time through a shared Int32Array, and gives the partner up — for good — if a job fails or is not
 * answered in time. Weights and numbers lie in the memory both threads share (shared-place.ts).
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { threadEntry } from '../../thread-entry.js';
import type { SharedPlace } from './shared-place.js';
import {
  CONTROL_SLOTS,
  Slot,
  State,
  type PartnerCommand,
  type PartnerIo,
  type PartnerMlp,
  type PartnerReport,
  type PartnerWeight,
  type PartnerWorkerData,
  type AttentionJob,
  Job,
  writeAttentionJob,
} from './protocol.js';

/**
 * A job the partner has not finished by then means it is gone (the largest product takes well under 1 s).
 * Waiting is the only way to tell while this thread blocks: a dead worker's exit event needs the event loop.
 */
const JOB_TIMEOUT_MS = 20_000;
/** Polls of the state before sleeping: the partner usually finishes within microseconds of this thread. */
const SPIN_POLLS = 2_000;

/** Floats per input row of the partner's largest input, output and MLP hidden layer; its kernels' scratch. */
export interface PartnerSizes {
  input: number;
  output: number;
  hidden: number;
  scratch: number;
  /** The deepest product's k: a prompt's kernels repack its input rows into the scratch (f32ScratchFloats). */
  depth: number;
  /** The most input rows a job may have (larger steps run on the model's thread alone). */
  maxRows: number;
}

/** The partner's weights, at their places in the shared memory. */
export interface PartnerShare {
  weights: PartnerWeight[];
  mlps: PartnerMlp[];
  /** Also keep int8 copies for the fast jobs. */
  fast: boolean;
}

/** Input rows the first input/output places hold (a decode step's); prompts re-place them larger. */
const FIRST_ROWS = 4;

export interface PartnerChannelOptions {
  /** The partner's script (tests start a faulty one). */
  entry?: URL;
  jobTimeoutMs?: number;
}

export class PartnerChannel {
  private inputView: Float32Array;
  private outputView: Float32Array;
  private lostReason: string | null = null;
  private readonly ctrl: Int32Array;

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    control: SharedArrayBuffer,
    private readonly jobTimeoutMs: number,
    private readonly place: SharedPlace,
    private readonly sizes: PartnerSizes,
    private io: PartnerIo,
  ) {
    this.ctrl = new Int32Array(control);
    [this.inputView, this.outputView] = this.views();
    worker.on('error', (error) => this.lose(`the partner thread failed: ${error.message}`));
    worker.on('exit', (code) => this.lose(`the partner thread exited (code ${code})`));
  }

  /**
   * Starts the partner on its share of the weights (already in `place`) and resolves once it is ready. From
   * then on the channel owns `place`: it releases it once the thread has exited.
   */
  static async start(place: SharedPlace, share: PartnerShare, sizes: PartnerSizes, options: PartnerChannelOptions = {}): Promise<PartnerChannel> {
    const io = placeIo(place, sizes, FIRST_ROWS);
    if (!io) {
      place.release();
      throw new Error('the second engine thread did not start: no room for its inputs and outputs');
    }
    const control = new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT);
    const { port1, port2 } = new MessageChannel();
    const { url, entry } = threadEntry(options.entry ?? new URL('./partner-thread.js', import.meta.url));
    const workerData: PartnerWorkerData = { entry, control, port: port2 };
    const worker = new Worker(url, { workerData, transferList: [port2] });
    worker.unref();
    port1.postMessage({ type: 'weights', memory: place.memory, ...share, io } satisfies PartnerCommand);
    try {
      await new Promise<void>((resolve, reject) => {
        const fail = (message: string) => reject(new Error(`the second engine thread did not start: ${message}`));
        port1.once('message', (report: PartnerReport) => (report.type === 'ready' ? resolve() : fail(report.message)));
        worker.once('error', (error) => fail(error.message));
        worker.once('exit', (code) => fail(`it exited with code ${code}`));
      });
    } catch (error) {
      void worker.terminate().finally(() => place.release());
      port1.close();
      throw error;
    }
    worker.removeAllListeners();
    port1.removeAllListeners();
    port1.unref();
    return new PartnerChannel(worker, port1, control, options.jobTimeoutMs ?? JOB_TIMEOUT_MS, place, sizes, io);
  }

  /** Why the partner is no longer used (null while it is). */
  get lost(): string | null {
    return this.lostReason;
  }

  /** Where the next job's input goes (valid until the next `ensureRoom`). */
  get input(): Float32Array {
    return this.inputView;
  }

  /** Where the partner leaves a finished job's result. */
  get output(): Float32Array {
    return this.outputView;
  }

  /** The memory the partner works in, and the byte offset of `output` there. */
  get memory(): WebAssembly.Memory {
    return this.place.memory;
  }

  get outputAt(): number {
    return this.io.outputAt;
  }

  /** Makes room for jobs of `rows` input rows; false if there is none, or the partner was lost on the way. */
  ensureRoom(rows: number): boolean {
    if (rows <= this.io.rows) return true;
    if (rows > this.sizes.maxRows) return false;
    // Doubling, so that a growing prompt re-places a few times, not at every step.
    const io = placeIo(this.place, this.sizes, Math.min(this.sizes.maxRows, Math.max(rows, 2 * this.io.rows)));
    if (!io) return false;
    this.port.postMessage({ type: 'buffers', io } satisfies PartnerCommand);
    this.signal(State.buffers);
    if (!this.finish()) return false;
    this.io = io;
    [this.inputView, this.outputView] = this.views();
    return true;
  }

  /** Posts a job (`Job` kind, weight or MLP index, input rows); its input must already be in `input`. */
  post(kind: number, index: number, rows: number): void {
    Atomics.store(this.ctrl, Slot.kind, kind);
    Atomics.store(this.ctrl, Slot.weight, index);
    Atomics.store(this.ctrl, Slot.rows, rows);
    this.signal(State.job);
  }

  /**
   * Posts a Job.columns: input [rows, k] at byte offset `inputAt` times columns [from, cols) of weight `index`
   * (+ the bias at `biasAt`, 0: none) into the same columns of the output [rows, cols] at `outputAt`.
   */
  postColumns(index: number, rows: number, inputAt: number, outputAt: number, from: number, biasAt: number): void {
    Atomics.store(this.ctrl, Slot.input, inputAt);
    Atomics.store(this.ctrl, Slot.output, outputAt);
    Atomics.store(this.ctrl, Slot.bias, biasAt);
    Atomics.store(this.ctrl, Slot.from, from);
    this.post(Job.columns, index, rows);
  }

  /** Posts a Job.attention (its places must lie in the memory the partner sees). */
  postAttention(job: AttentionJob): void {
    writeAttentionJob(this.ctrl, job);
    this.post(Job.attention, 0, job.shape.batch * job.shape.time);
  }

  /** Waits for the posted job; false (and the partner given up) if it failed or never answered. */
  finish(): boolean {
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

  /** Stops the thread; its memory is released once it has exited (a lost one may still be mid-job). */
  dispose(): void {
    if (!this.lostReason) this.lostReason = 'stopped';
    this.signal(State.stop);
    void this.worker.terminate().finally(() => this.place.release());
    this.port.close();
  }

  private views(): [Float32Array, Float32Array] {
    const { io, sizes, place } = this;
    return [place.f32(io.inputAt, io.rows * sizes.input), place.f32(io.outputAt, io.rows * sizes.output)];
  }

  private signal(state: number): void {
    Atomics.store(this.ctrl, Slot.state, state);
    Atomics.notify(this.ctrl, Slot.state);
  }

  private lose(reason: string): void {
    if (this.lostReason) return;
    this.lostReason = reason;
    void this.worker.terminate();
  }
}

/** Input, output, hidden and scratch places for `rows` input rows; null when there is no room for them. */
function placeIo(place: SharedPlace, sizes: PartnerSizes, rows: number): PartnerIo | null {
  const inputAt = place.reserve(rows * sizes.input);
  const outputAt = inputAt === null ? null : place.reserve(rows * sizes.output);
  const hiddenAt = outputAt === null ? null : place.reserve(rows * sizes.hidden);
  const scratchAt = hiddenAt === null ? null : place.reserve(sizes.scratch + 4 * Math.ceil(rows / 4) * sizes.depth);
  if (inputAt === null || outputAt === null || hiddenAt === null || scratchAt === null) return null;
  return { rows, inputAt, outputAt, hiddenAt, scratchAt };
}
