/**
 * A second core for the matrix products of a GPT2Model (see split-products.ts): holds its share of each
 * weight matrix in a WebAssembly backend of its own, and multiplies whatever input the model's thread posts.
 * After start-up it never returns to its event loop: it sleeps in Atomics.wait between jobs.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../backend.js';
import { currentBackendMemory, type BackendMemory } from '../kernels/backend-memory.js';
import { geluTanhInPlace, reluInPlace } from '../kernels/host-ops.js';
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

const { control, port } = workerData as PartnerWorkerData;
const ctrl = new Int32Array(control);
const report = (message: PartnerReport) => port.postMessage(message);

interface HeldWeight {
  info: tf.TensorInfo;
  rows: number;
  cols: number;
  transposed: boolean;
}

function holdWeights(memory: BackendMemory, weights: PartnerWeight[]): HeldWeight[] {
  return weights.map(({ rows, cols, transposed, values }) => {
    const info = memory.alloc([1, rows, cols]);
    memory.view(info).set(values);
    return { info, rows, cols, transposed };
  });
}

interface HeldMlp {
  width: number;
  activate: (x: Float32Array) => void;
  fc: tf.TensorInfo;
  fcBias: tf.TensorInfo;
  proj: tf.TensorInfo;
}

function holdMlps(memory: BackendMemory, mlps: PartnerMlp[]): HeldMlp[] {
  const hold = (values: Float32Array, shape: number[]) => {
    const info = memory.alloc(shape);
    memory.view(info).set(values);
    return info;
  };
  return mlps.map((m) => ({
    width: m.width,
    activate: m.activation === 'relu' ? reluInPlace : geluTanhInPlace,
    fc: hold(m.fc, [1, m.width, m.hidden]),
    fcBias: hold(m.fcBias, [m.hidden]),
    proj: hold(m.proj, [1, m.hidden, m.width]),
  }));
}

/** input [rows, width] → activation(input · fc + bias) · proj, the partner's partial sum, into the numbers. */
function runMlp(memory: BackendMemory, mlp: HeldMlp, rows: number, numbers: Float32Array, outputOffset: number): void {
  const x = memory.alloc([1, rows, mlp.width]);
  let hidden: tf.TensorInfo | null = null;
  let y: tf.TensorInfo | null = null;
  try {
    memory.view(x).set(numbers.subarray(0, rows * mlp.width));
    hidden = memory.matMul(x, mlp.fc, mlp.fcBias, false);
    mlp.activate(memory.view(hidden));
    y = memory.matMul(hidden, mlp.proj, null, false);
    numbers.set(memory.view(y), outputOffset);
  } finally {
    for (const info of [x, hidden, y]) if (info) memory.free(info);
  }
}

/** input [rows, k] from the shared numbers → product with the weight block → output [rows, n] into them. */
function multiply(memory: BackendMemory, weight: HeldWeight, rows: number, numbers: Float32Array, outputOffset: number): void {
  const k = weight.transposed ? weight.cols : weight.rows;
  const n = weight.transposed ? weight.rows : weight.cols;
  const x = memory.alloc([1, rows, k]);
  let y: tf.TensorInfo | null = null;
  try {
    memory.view(x).set(numbers.subarray(0, rows * k));
    y = memory.matMul(x, weight.info, null, weight.transposed);
    numbers.set(memory.view(y), outputOffset);
  } finally {
    memory.free(x);
    if (y) memory.free(y);
  }
}

function receive(): PartnerCommand {
  const received = receiveMessageOnPort(port);
  if (!received) throw new Error('partner: a command was announced but none is on the port');
  return received.message as PartnerCommand;
}

async function start(): Promise<void> {
  await initBackend('wasm');
  const memory = currentBackendMemory();
  if (!memory) throw new Error(`partner: the ${tf.getBackend()} backend gives no direct memory access`);
  const first = await new Promise<PartnerCommand>((resolve) => port.once('message', resolve));
  if (first.type !== 'weights') throw new Error(`partner: expected the weights first, got ${first.type}`);
  const weights = holdWeights(memory, first.weights);
  const mlps = holdMlps(memory, first.mlps);
  first.weights.length = 0; // let the transferred copies go
  first.mlps.length = 0;
  let numbers: Float32Array = new Float32Array(0);
  let outputOffset = 0;
  report({ type: 'ready', backend: tf.getBackend() });

  for (;;) {
    let state = Atomics.load(ctrl, Slot.state);
    while (state !== State.job && state !== State.buffers && state !== State.stop) {
      Atomics.wait(ctrl, Slot.state, state);
      state = Atomics.load(ctrl, Slot.state);
    }
    if (state === State.stop) break;
    try {
      if (state === State.buffers) {
        const command = receive();
        if (command.type !== 'buffers') throw new Error(`partner: expected buffers, got ${command.type}`);
        numbers = new Float32Array(command.numbers);
        outputOffset = command.outputOffset;
      } else {
        const [index, rows] = [Atomics.load(ctrl, Slot.weight), Atomics.load(ctrl, Slot.rows)];
        if (Atomics.load(ctrl, Slot.kind) === Job.mlp) runMlp(memory, mlps[index], rows, numbers, outputOffset);
        else multiply(memory, weights[index], rows, numbers, outputOffset);
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
