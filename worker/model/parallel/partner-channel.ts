/**
 * The model thread's end of the partner (partner-thread.ts): starts the thread with its weights, posts one
 * job at a time through a shared Int32Array, and gives the partner up — for good — if a job fails or is not
 * answered in time. Numbers travel in a SharedArrayBuffer: the job's input first, its output after.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { threadEntry } from '../../thread-entry.js';
import { CONTROL_SLOTS, Slot, State, type PartnerCommand, type PartnerReport, type PartnerWorkerData } from './protocol.js';

/**
 * A job the partner has not finished by then means it is gone (the largest product takes well under 1 s).
 * Waiting is the only way to tell while this thread blocks: a dead worker's exit event needs the event loop.
 */
const JOB_TIMEOUT_MS = 20_000;
/** Polls of the state before sleeping: the partner usually finishes within microseconds of this thread. */
const SPIN_POLLS = 2_000;

export interface PartnerChannelOptions {
  /** The partner's script (tests start a faulty one). */
  entry?: URL;
  jobTimeoutMs?: number;
}

export class PartnerChannel {
  private numbers: Float32Array = new Float32Array(0);
  private outputOffset = 0;
  private lostReason: string | null = null;
  private readonly ctrl: Int32Array;

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    control: SharedArrayBuffer,
    private readonly jobTimeoutMs: number,
  ) {
    this.ctrl = new Int32Array(control);
    worker.on('error', (error) => this.lose(`the partner thread failed: ${error.message}`));
    worker.on('exit', (code) => this.lose(`the partner thread exited (code ${code})`));
  }

  /** Starts the partner with its weights (transferred, not copied) and resolves once it holds them. */
  static async start(weights: Extract<PartnerCommand, { type: 'weights' }>, options: PartnerChannelOptions = {}): Promise<PartnerChannel> {
    const control = new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT);
    const { port1, port2 } = new MessageChannel();
    const { url, entry } = threadEntry(options.entry ?? new URL('./partner-thread.js', import.meta.url));
    const workerData: PartnerWorkerData = { entry, control, port: port2 };
    const worker = new Worker(url, { workerData, transferList: [port2] });
    worker.unref();
    const transfers = [
      ...weights.weights.map((w) => w.values.buffer),
      ...weights.mlps.flatMap((m) => [m.fc.buffer, m.fcBias.buffer, m.proj.buffer]),
    ];
    port1.postMessage(weights, transfers);
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
    return new PartnerChannel(worker, port1, control, options.jobTimeoutMs ?? JOB_TIMEOUT_MS);
  }

  /** Why the partner is no longer used (null while it is). */
  get lost(): string | null {
    return this.lostReason;
  }

  /** Where the next job's input goes (valid until the next `ensureRoom`). */
  get input(): Float32Array {
    return this.numbers.subarray(0, this.outputOffset);
  }

  /** Where the partner leaves a finished job's result. */
  get output(): Float32Array {
    return this.numbers.subarray(this.outputOffset);
  }

  /** Makes room for an input and an output of these sizes; false if the partner was lost on the way. */
  ensureRoom(input: number, output: number): boolean {
    const [inputRoom, outputRoom] = [this.outputOffset, this.numbers.length - this.outputOffset];
    if (input <= inputRoom && output <= outputRoom) return true;
    // Doubling, so that a growing prompt reallocates a few times, not at every step.
    const newInput = Math.max(input, 2 * inputRoom, 1 << 16);
    const newOutput = Math.max(output, 2 * outputRoom, 1 << 16);
    const numbers = new SharedArrayBuffer((newInput + newOutput) * Float32Array.BYTES_PER_ELEMENT);
    this.port.postMessage({ type: 'buffers', numbers, outputOffset: newInput } satisfies PartnerCommand);
    this.signal(State.buffers);
    if (!this.finish()) return false;
    this.numbers = new Float32Array(numbers);
    this.outputOffset = newInput;
    return true;
  }

  /** Posts a job (`Job` kind, weight or MLP index, input rows); its input must already be in `input`. */
  post(kind: number, index: number, rows: number): void {
    Atomics.store(this.ctrl, Slot.kind, kind);
    Atomics.store(this.ctrl, Slot.weight, index);
    Atomics.store(this.ctrl, Slot.rows, rows);
    this.signal(State.job);
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

  dispose(): void {
    if (!this.lostReason) this.lostReason = 'stopped';
    this.signal(State.stop);
    void this.worker.terminate();
    this.port.close();
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
