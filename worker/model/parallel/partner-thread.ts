/**
 * A second core for the matrix products of a GPT2Model (see decode-products.ts): holds its share of each
 * weight matrix in a WebAssembly backend of its own (and in int8 for the fast precision), and multiplies
 * whatever input the model's thread posts. After start-up it never returns to its event loop: it sleeps in
 * Atomics.wait between jobs.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../backend.js';
import { currentBackendMemory, type BackendMemory } from '../kernels/backend-memory.js';
import { geluTanhInPlace, reluInPlace } from '../kernels/host-ops.js';
import { Q8Runner, type Q8Block } from '../kernels/q8/runner.js';
import {
  Job,
  Slot,
  State,
  type PartnerCommand,
  type PartnerMlp,
  type PartnerReport,
  type PartnerWeight,
  type PartnerWorkerData,
} from './protocol.js';

/** How long the partner polls for the next job before it sleeps (a decode step's gaps are far shorter). */
const SPIN_MS = 2;

const { control, port } = workerData as PartnerWorkerData;
const ctrl = new Int32Array(control);
const report = (message: PartnerReport) => port.postMessage(message);

interface HeldWeight {
  info: tf.TensorInfo;
  k: number;
  n: number;
  transposed: boolean;
  q8: Q8Block | null;
}

interface HeldMlp {
  width: number;
  hidden: number;
  activate: (x: Float32Array) => void;
  fc: tf.TensorInfo;
  fcBias: tf.TensorInfo;
  proj: tf.TensorInfo;
  q8fc: Q8Block | null;
  q8proj: Q8Block | null;
}

function hold(memory: BackendMemory, values: Float32Array, shape: number[]): tf.TensorInfo {
  const info = memory.alloc(shape);
  memory.view(info).set(values);
  return info;
}

function holdWeights(memory: BackendMemory, weights: PartnerWeight[], q8: Q8Runner | null): HeldWeight[] {
  return weights.map(({ rows, cols, transposed, values }) => {
    const [k, n] = transposed ? [cols, rows] : [rows, cols];
    const placed = q8 && rows > 0 ? q8.place(values, k, n, transposed ? 'out-in' : 'in-out') : null;
    return { info: hold(memory, values, [1, rows, cols]), k, n, transposed, q8: placed };
  });
}

function holdMlps(memory: BackendMemory, mlps: PartnerMlp[], q8: Q8Runner | null): HeldMlp[] {
  return mlps.map((m) => ({
    width: m.width,
    hidden: m.hidden,
    activate: m.activation === 'relu' ? reluInPlace : geluTanhInPlace,
    fc: hold(memory, m.fc, [1, m.width, m.hidden]),
    fcBias: hold(memory, m.fcBias, [m.hidden]),
    proj: hold(memory, m.proj, [1, m.hidden, m.width]),
    q8fc: q8 ? q8.place(m.fc, m.width, m.hidden, 'in-out', m.fcBias) : null,
    q8proj: q8 ? q8.place(m.proj, m.hidden, m.width, 'in-out') : null,
  }));
}

/** Runs `work` on a backend copy of the input and copies its result into the numbers; frees both. */
function onBackend(memory: BackendMemory, input: Float32Array, shape: number[], work: (x: tf.TensorInfo) => tf.TensorInfo, out: Float32Array): void {
  const x = hold(memory, input, shape);
  let y: tf.TensorInfo | null = null;
  try {
    y = work(x);
    out.set(memory.view(y));
  } finally {
    memory.free(x);
    if (y) memory.free(y);
  }
}

async function start(): Promise<void> {
  await initBackend('wasm');
  const memory = currentBackendMemory();
  if (!memory) throw new Error(`partner: the ${tf.getBackend()} backend gives no direct memory access`);
  const first = await new Promise<PartnerCommand>((resolve) => port.once('message', resolve));
  if (first.type !== 'weights') throw new Error(`partner: expected the weights first, got ${first.type}`);
  const q8 = first.fast ? new Q8Runner() : null;
  const weights = holdWeights(memory, first.weights, q8);
  const mlps = holdMlps(memory, first.mlps, q8);
  first.weights.length = 0; // let the transferred copies go
  first.mlps.length = 0;
  let numbers: Float32Array = new Float32Array(0);
  let outputOffset = 0;
  let hidden = new Float32Array(0);
  report({ type: 'ready', backend: tf.getBackend() });

  const runJob = (kind: number, index: number, rows: number) => {
    if (kind === Job.product || kind === Job.productFast) {
      const w = weights[index];
      const [input, out] = [numbers.subarray(0, rows * w.k), numbers.subarray(outputOffset, outputOffset + rows * w.n)];
      if (kind === Job.productFast) q8!.run(w.q8!, input, rows, out);
      else onBackend(memory, input, [1, rows, w.k], (x) => memory.matMul(x, w.info, null, w.transposed), out);
      return;
    }
    const m = mlps[index];
    const [input, out] = [numbers.subarray(0, rows * m.width), numbers.subarray(outputOffset, outputOffset + rows * m.width)];
    if (kind === Job.mlpFast) {
      if (hidden.length < rows * m.hidden) hidden = new Float32Array(rows * m.hidden);
      const h = hidden.subarray(0, rows * m.hidden);
      q8!.run(m.q8fc!, input, rows, h);
      m.activate(h);
      q8!.run(m.q8proj!, h, rows, out);
      return;
    }
    onBackend(memory, input, [1, rows, m.width], (x) => {
      const h = memory.matMul(x, m.fc, m.fcBias, false);
      try {
        m.activate(memory.view(h));
        return memory.matMul(h, m.proj, null, false);
      } finally {
        memory.free(h);
      }
    }, out);
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
        numbers = new Float32Array(received.numbers);
        outputOffset = received.outputOffset;
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
