/**
 * The int8 and float32 matrix-vector kernels (worker/model/kernels/q8) on GPT-2 small's decode products,
 * one thread: 12 × [768→2304, 768→768, 768→3072, 3072→768] plus the tied 768→50257 lm head, random weights.
 *
 *   node --import tsx bench/q8-kernel.ts [--rounds 7] [--batch 1,4]
 *
 * A "token" is every product once (what one decode step multiplies), from weights that do not fit in any
 * cache, so this measures memory bandwidth as the kernels see it. The int8 time includes quantizing each
 * product's input vectors. Also: the kernels on a block of weights that stays in L2 (their compute ceiling),
 * the lm head's logit error from int8 (random input), and how long quantizing the model takes.
 *
 * The two kernels alternate round by round, so the load of a shared machine hits both alike; still, on a
 * 2-core machine where something else runs, treat single numbers as noisy (the load average is printed).
 * Human-readable lines first; the last line is one JSON object.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { KernelArena, Q8_GROUP, loadQ8Kernels, quantizeWeightsQ8, type PlacedQ8, type Q8Kernels } from '../worker/model/kernels/q8/q8.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, batch: { type: 'string', default: '1,4' } } });
const rounds = Number(values.rounds);
const batches = values.batch.split(',').map(Number);

const C = 768;
const VOCAB = 50257;
interface Product {
  name: string;
  inDim: number;
  outDim: number;
  /** GPT-2 stores Conv1D weights [in, out]; the tied lm head (wte) is [vocab, C], i.e. [out, in]. */
  layout: 'in-out' | 'out-in';
}
const products: Product[] = [];
for (let layer = 0; layer < 12; layer++) {
  products.push(
    { name: `h${layer}.attn.c_attn`, inDim: C, outDim: 3 * C, layout: 'in-out' },
    { name: `h${layer}.attn.c_proj`, inDim: C, outDim: C, layout: 'in-out' },
    { name: `h${layer}.mlp.c_fc`, inDim: C, outDim: 4 * C, layout: 'in-out' },
    { name: `h${layer}.mlp.c_proj`, inDim: 4 * C, outDim: C, layout: 'in-out' },
  );
}
products.push({ name: 'lm_head', inDim: C, outDim: VOCAB, layout: 'out-in' });

/** Cheap deterministic values in about [-0.05, 0.05] (xorshift; the values do not matter for speed). */
function fillRandom(a: Float32Array, seed: number): void {
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 4294967296 - 0.5) * 0.1;
  }
}

function normal(length: number, seed: number): Float32Array {
  const a = new Float32Array(length);
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < length; i++) a[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return a;
}

const pages = (bytes: number) => Math.ceil(bytes / 65536);
const f32Bytes = products.reduce((s, p) => s + p.inDim * p.outDim * 4, 0);
const q8Bytes = products.reduce((s, p) => s + p.inDim * p.outDim + (p.inDim / Q8_GROUP) * p.outDim * 4, 0);
const maxBatch = Math.max(...batches);
const ioBytes = 4 * (4 * C + VOCAB) * maxBatch * 2 + (1 << 20);

// Two memories, so that each kernel's weights are laid out as they would be on their own.
const f32Arena = new KernelArena(new WebAssembly.Memory({ initial: pages(f32Bytes + ioBytes) }));
const q8Arena = new KernelArena(new WebAssembly.Memory({ initial: pages(q8Bytes + ioBytes) }));
const f32Kernels = loadQ8Kernels(f32Arena.memory);
const q8Kernels = loadQ8Kernels(q8Arena.memory);

console.log(`placing ${products.length} products: float32 ${(f32Bytes / 1e6).toFixed(0)} MB, int8 ${(q8Bytes / 1e6).toFixed(0)} MB …`);
const f32Ptrs: number[] = [];
const q8Placed: PlacedQ8[] = [];
let quantizeMs = 0;
products.forEach((p, index) => {
  const stored = new Float32Array(p.inDim * p.outDim); // as GPT-2 stores it
  fillRandom(stored, index + 1);
  const t0 = performance.now();
  const q = quantizeWeightsQ8(stored, p.inDim, p.outDim, p.layout);
  quantizeMs += performance.now() - t0;
  q8Placed.push(q8Arena.putQ8(q));
  // The float32 kernel wants output-row-major too.
  const ptr = f32Arena.allocF32(p.inDim * p.outDim);
  const rows = f32Arena.f32(ptr, p.inDim * p.outDim);
  if (p.layout === 'out-in') rows.set(stored);
  else for (let i = 0; i < p.inDim; i++) for (let o = 0; o < p.outDim; o++) rows[o * p.inDim + i] = stored[i * p.outDim + o];
  f32Ptrs.push(ptr);
});
console.log(`quantizing the model in JavaScript took ${(quantizeMs / 1000).toFixed(1)} s`);

const f32Io = { x: f32Arena.allocF32(4 * C * maxBatch), y: f32Arena.allocF32(VOCAB * maxBatch) };
const q8Io = { ...q8Arena.allocInput(4 * C, maxBatch), y: q8Arena.allocF32(VOCAB * maxBatch) };
f32Arena.f32(f32Io.x, 4 * C * maxBatch).set(normal(4 * C * maxBatch, 5));
q8Arena.f32(q8Io.xPtr, 4 * C * maxBatch).set(normal(4 * C * maxBatch, 5));

function f32Token(k: Q8Kernels, nX: number): void {
  products.forEach((p, i) => k.f32Matvec(f32Ptrs[i], f32Io.y, f32Io.x, 0, p.inDim, 0, p.outDim, nX, p.outDim));
}

function q8Token(k: Q8Kernels, nX: number): void {
  products.forEach((p, i) => {
    k.quantizeX(q8Io.xPtr, p.inDim * nX, q8Io.xqPtr, q8Io.xsPtr);
    k.q8Matvec(q8Placed[i].wPtr, q8Placed[i].wsPtr, q8Io.xqPtr, q8Io.xsPtr, q8Io.y, 0, p.inDim, 0, p.outDim, nX, p.outDim);
  });
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const round1 = (v: number) => Math.round(v * 10) / 10;
const round2 = (v: number) => Math.round(v * 100) / 100;

interface Timing {
  msPerToken: number;
  minMsPerToken: number;
  gbPerS: number;
}

/** Alternates the kernels token by token; median and best over `rounds`. */
function timeTokens(nX: number): { f32: Timing; q8: Timing } {
  f32Token(f32Kernels, nX); // warm-up: V8 tiers the module up on first calls
  q8Token(q8Kernels, nX);
  const f32Ms: number[] = [];
  const q8Ms: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    f32Token(f32Kernels, nX);
    f32Ms.push(performance.now() - t0);
    t0 = performance.now();
    q8Token(q8Kernels, nX);
    q8Ms.push(performance.now() - t0);
  }
  const summary = (ms: number[], bytes: number): Timing => ({
    msPerToken: round1(median(ms)),
    minMsPerToken: round1(Math.min(...ms)),
    gbPerS: round2(bytes / 1e9 / (median(ms) / 1000)),
  });
  return { f32: summary(f32Ms, f32Bytes), q8: summary(q8Ms, q8Bytes) };
}

/**
 * The kernels' compute ceiling: the first 128 rows of a 768→768 product, repeated, so the weights stay in L2
 * (float32 393 KB, int8 111 KB). Timed in CPU time, which the other processes on a shared machine disturb
 * less than wall time.
 */
function timeInCache(nX: number): { f32GbPerS: number; q8GbPerS: number } {
  const index = 1; // h0.attn.c_proj, 768→768
  const { inDim, outDim } = products[index];
  const rows = 128;
  const run = (f: () => void, bytes: number) => {
    for (let i = 0; i < 50; i++) f();
    const samples: number[] = [];
    for (let r = 0; r < 5; r++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let reps = 0;
      for (; performance.now() - t0 < 150; reps++) f();
      const { user, system } = process.cpuUsage(cpu0);
      samples.push((bytes * reps) / 1e3 / (user + system));
    }
    return round2(median(samples));
  };
  const f32GbPerS = run(() => f32Kernels.f32Matvec(f32Ptrs[index], f32Io.y, f32Io.x, 0, inDim, 0, rows, nX, outDim), inDim * rows * 4);
  const q8GbPerS = run(
    () => q8Kernels.q8Matvec(q8Placed[index].wPtr, q8Placed[index].wsPtr, q8Io.xqPtr, q8Io.xsPtr, q8Io.y, 0, inDim, 0, rows, nX, outDim),
    inDim * rows * 1.125,
  );
  return { f32GbPerS, q8GbPerS };
}

/** The lm head's logits from int8 against float32, for a random normal hidden state. */
function lmHeadError(): { relativeL2: number; maxAbsOverMaxLogit: number; top1Same: boolean } {
  const index = products.length - 1;
  const x = normal(C, 99);
  f32Arena.f32(f32Io.x, C).set(x);
  q8Arena.f32(q8Io.xPtr, C).set(x);
  f32Kernels.f32Matvec(f32Ptrs[index], f32Io.y, f32Io.x, 0, C, 0, VOCAB, 1, VOCAB);
  q8Kernels.quantizeX(q8Io.xPtr, C, q8Io.xqPtr, q8Io.xsPtr);
  q8Kernels.q8Matvec(q8Placed[index].wPtr, q8Placed[index].wsPtr, q8Io.xqPtr, q8Io.xsPtr, q8Io.y, 0, C, 0, VOCAB, 1, VOCAB);
  const exact = f32Arena.f32(f32Io.y, VOCAB);
  const approx = q8Arena.f32(q8Io.y, VOCAB);
  let err = 0;
  let norm = 0;
  let maxErr = 0;
  let maxLogit = 0;
  let best = 0;
  let bestQ = 0;
  for (let i = 0; i < VOCAB; i++) {
    err += (approx[i] - exact[i]) ** 2;
    norm += exact[i] ** 2;
    maxErr = Math.max(maxErr, Math.abs(approx[i] - exact[i]));
    maxLogit = Math.max(maxLogit, Math.abs(exact[i]));
    if (exact[i] > exact[best]) best = i;
    if (approx[i] > approx[bestQ]) bestQ = i;
  }
  return { relativeL2: Number(Math.sqrt(err / norm).toExponential(2)), maxAbsOverMaxLogit: Number((maxErr / maxLogit).toExponential(2)), top1Same: best === bestQ };
}

const loadBefore = loadavg()[0];
const perBatch: Record<string, { f32: Timing; q8: Timing }> = {};
for (const nX of batches) {
  const t = timeTokens(nX);
  perBatch[`batch${nX}`] = t;
  console.log(
    `batch ${nX}: float32 ${t.f32.msPerToken} ms/token (best ${t.f32.minMsPerToken}), ${t.f32.gbPerS} GB/s of weights | ` +
      `int8 ${t.q8.msPerToken} ms/token (best ${t.q8.minMsPerToken}), ${t.q8.gbPerS} GB/s | ` +
      `speed-up ${round2(t.f32.msPerToken / t.q8.msPerToken)}×`,
  );
}
const inCache: Record<string, { f32GbPerS: number; q8GbPerS: number }> = {};
q8Kernels.quantizeX(q8Io.xPtr, C * maxBatch, q8Io.xqPtr, q8Io.xsPtr);
for (const nX of batches) {
  const t = (inCache[`batch${nX}`] = timeInCache(nX));
  console.log(`batch ${nX}, weights in L2 (compute ceiling, CPU time): float32 ${t.f32GbPerS} GB/s, int8 ${t.q8GbPerS} GB/s of weights`);
}
const error = lmHeadError();
console.log(`lm head, int8 vs float32 logits: relative L2 ${error.relativeL2}, max |Δ| / max |logit| ${error.maxAbsOverMaxLogit}, same top-1: ${error.top1Same}`);
const load = [round2(loadBefore), round2(loadavg()[0])];
console.log(`load average (1 min) before/after: ${load.join(' / ')} — on a 2-core machine, numbers are noisy when it is above ~1`);

console.log(
  JSON.stringify({
    bench: 'q8-kernel',
    threads: 1,
    rounds,
    weightMB: { f32: Math.round(f32Bytes / 1e6), q8: Math.round(q8Bytes / 1e6) },
    ...perBatch,
    inL2GbPerS: inCache,
    lmHeadLogitError: error,
    quantizeModelS: round1(quantizeMs / 1000),
    loadAverage: load,
  }),
);
