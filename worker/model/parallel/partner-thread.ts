/**
 * A second core for the matrix products of a GPT2Model (see decode-products.ts). Its share of each weight
 * matrix lies in the memory it shares with the model's thread (shared-place.ts), where our float32 kernels
 * (kernels/f32) multiply it in place, reading each job's input and writing its result there too; the fast
 * precision also keeps int8 copies (kernels/q8). No TensorFlow.js here: the partner needs nothing but the
 * kernels. After start-up it never returns to its event loop: it sleeps in Atomics.wait between jobs.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { activateAt, f32Kernels } from '../kernels/f32/f32.js';
import { Q8Runner, type Q8Block } from '../kernels/q8/runner.js';
import { attendHeads } from '../kernels/attention/heads.js';
import { Job, Slot, State, readAttentionJob, type PartnerCommand, type PartnerIo, type PartnerReport, type PartnerWorkerData } from './protocol.js';

/** How long the partner polls for the next job before it sleeps (a decode step's gaps are far shorter). */
const SPIN_MS = 2;

const { control, port } = workerData as PartnerWorkerData;
const ctrl = new Int32Array(control);
const report = (message: PartnerReport) => port.postMessage(message);

async function start(): Promise<void> {
  const first = await new Promise<PartnerCommand>((resolve) => port.once('message', resolve));
  if (first.type !== 'weights') throw new Error(`partner: expected the weights first, got ${first.type}`);
  const { memory, weights, mlps } = first;
  let io: PartnerIo = first.io;
  const kernels = f32Kernels(memory);
  const f32 = (at: number, floats: number) => new Float32Array(memory.buffer, at, floats);
  /** rows × cols floats whose rows lie `ld` apart, as one contiguous array (a view where they already are). */
  const block = (at: number, rows: number, cols: number, ld: number) => {
    if (ld === cols) return f32(at, rows * cols);
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) out.set(f32(at + r * ld * 4, cols), r * cols);
    return out;
  };
  const q8 = first.fast || weights.some((w) => w.int8) ? new Q8Runner() : null;
  const q8Weights: (Q8Block | null)[] = weights.map(({ rows, cols, transposed, at, ld, int8 }) => {
    if (!q8 || !int8 || rows === 0) return null;
    const [k, n] = transposed ? [cols, rows] : [rows, cols];
    return q8.place(block(at, rows, cols, ld), k, n, transposed ? 'out-in' : 'in-out');
  });
  const q8Mlps = mlps.map((m) =>
    q8 && first.fast
      ? {
          fc: q8.place(block(m.fcAt, m.width, m.hidden, m.fcLd), m.width, m.hidden, 'in-out', f32(m.fcBiasAt, m.hidden)),
          proj: q8.place(f32(m.projAt, m.hidden * m.width), m.hidden, m.width, 'in-out'),
        }
      : null,
  );
  report({ type: 'ready' });

  const runJob = (kind: number, index: number, rows: number) => {
    if (kind === Job.attention) {
      const { at, shape, from, mode } = readAttentionJob(ctrl);
      attendHeads(memory, at, shape, from, shape.nHead, mode);
      return;
    }
    if (kind === Job.columns) {
      const w = weights[index];
      const whole = w.whole!;
      const [from, biasAt] = [Atomics.load(ctrl, Slot.from), Atomics.load(ctrl, Slot.bias)];
      const [inputAt, outputAt] = [Atomics.load(ctrl, Slot.input), Atomics.load(ctrl, Slot.output)];
      kernels.gemmNN(inputAt, rows, whole.rows, whole.rows, whole.at + from * 4, w.cols - from, w.cols, biasAt && biasAt + from * 4,
        outputAt + from * 4, w.cols, io.scratchAt);
      return;
    }
    if (kind === Job.product || kind === Job.productFast) {
      const w = weights[index];
      const [k, n] = w.transposed ? [w.cols, w.rows] : [w.rows, w.cols];
      if (kind === Job.productFast) q8!.run(q8Weights[index]!, f32(io.inputAt, rows * k), rows, f32(io.outputAt, rows * n));
      else if (w.transposed) kernels.gemmNT(io.inputAt, rows, k, k, w.at, n, w.ld, 0, io.outputAt, n, io.scratchAt);
      else kernels.gemmNN(io.inputAt, rows, k, k, w.at, n, w.ld, 0, io.outputAt, n, io.scratchAt);
      return;
    }
    const m = mlps[index];
    const hiddenSize = rows * m.hidden;
    if (kind === Job.mlpFast) {
      const hidden = f32(io.hiddenAt, hiddenSize);
      const blocks = q8Mlps[index]!;
      q8!.run(blocks.fc, f32(io.inputAt, rows * m.width), rows, hidden);
      activateAt(memory, io.hiddenAt, hiddenSize, m.activation);
      q8!.run(blocks.proj, hidden, rows, f32(io.outputAt, rows * m.width));
      return;
    }
    kernels.gemmNN(io.inputAt, rows, m.width, m.width, m.fcAt, m.hidden, m.fcLd, m.fcBiasAt, io.hiddenAt, m.hidden, io.scratchAt);
    activateAt(memory, io.hiddenAt, hiddenSize, m.activation);
    kernels.gemmNN(io.hiddenAt, rows, m.hidden, m.hidden, m.projAt, m.width, m.width, 0, io.outputAt, m.width, io.scratchAt);
  };

  const posted = (state: number) => state === State.job || state === State.buffers || state === State.stop;
  for (;;) {
    let state = Atomics.load(ctrl, Slot.state);
    // While decoding, the next job comes within microseconds: polling for a while answers it at once,
    // where sleeping would add a futex wake (tens of µs, more on a busy machine) to each of ~40 jobs a token.
    const spinUntil = performance.now() + SPIN_MS;
    while (!posted(state) && performance.now() < spinUntil) {
      for (let i = 0; i < 64 && !posted(state); i++) state = Atomics.load(ctrl, Slot.state);
    }
    while (!posted(state)) {
      Atomics.wait(ctrl, Slot.state, state);
      state = Atomics.load(ctrl, Slot.state);
    }
    if (state === State.stop) break;
    try {
      if (state === State.buffers) {
        const received = receiveMessageOnPort(port)?.message as PartnerCommand | undefined;
        if (received?.type !== 'buffers') throw new Error(`partner: expected buffers, got ${received?.type ?? 'nothing'}`);
        io = received.io;
      } else {
        runJob(Atomics.load(ctrl, Slot.kind), Atomics.load(ctrl, Slot.weight), Atomics.load(ctrl, Slot.rows));
      }
      Atomics.store(ctrl, Slot.state, State.done);
    } catch (error) {
      report({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
      Atomics.store(ctrl, Slot.state, State.failed);
    }
    Atomics.notify(ctrl, Slot.state);
  }
  port.close();
}

start().catch((error: unknown) => {
  report({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  Atomics.store(ctrl, Slot.state, State.failed);
  Atomics.notify(ctrl, Slot.state);
  port.close();
});
