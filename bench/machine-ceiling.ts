/**
 * What this machine can do at the moment a benchmark runs, with `threads` threads at once
 * (machine-ceiling.wat): the fused multiply–add rate of 128-bit WebAssembly SIMD with nothing else in the loop;
 * the rate of the prompt kernel's own mix of loads and multiply–adds on data in L1 (its best case); and the
 * rate of reading memory in long streams (what a decode step does with every weight).
 *
 * This host is shared, and what it gives moves by up to 2× from one minute to the next (docs/performance-log.md,
 * section 9): the register-only rate stays near 45 GFLOP/s a core, while anything that touches memory, even
 * L1, slows down when the neighbours are busy. So a prefill's milliseconds alone say little; the benchmark
 * measures these just before and after each configuration and reports the engine's speed as fractions of them.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { relaxedSimdValidates } from '../worker/model/kernels/f32/f32.js';

export interface MachineCeiling {
  threads: number;
  /** Billions of float32 operations a second (a multiply–add is two), all threads together, from registers alone. */
  fma_gflops: number;
  /** The same for the prompt kernel's 4×8 tile (six loads for eight multiply–adds) on data in L1. */
  tile_gflops: number;
  /** Billions of bytes read a second from memory (well beyond the caches), all threads together. */
  read_gb_per_s: number;
}

export interface CeilingOptions {
  /** Trials per probe; the median is reported. */
  trials?: number;
  /** Milliseconds of each trial of the two multiply–add probes. */
  computeMs?: number;
  /** Bytes each thread streams through (beyond the last-level cache). */
  readBytes?: number;
}

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const PAGE = 65536;

/** Signals between this thread and the helper: [generation, probe, arg0, arg1, done]. */
enum Ctl {
  generation = 0,
  probe = 1,
  arg0 = 2,
  arg1 = 3,
  done = 4,
}

/** The probes, by their index in the control block: each an export of machine-ceiling.wat taking (arg0, arg1). */
const PROBES = ['fma', 'tile', 'read'] as const;
enum Probe {
  fma = 0,
  tile = 1,
  read = 2,
}

// Plain JavaScript, run with `eval`, so that the helper needs no loader in a build or under tsx.
const HELPER = `
const { workerData, parentPort } = require('node:worker_threads');
const { module, memory, control } = workerData;
const probes = new WebAssembly.Instance(module, { env: { memory } }).exports;
const ctl = new Int32Array(control);
parentPort.postMessage('ready');
let seen = 0;
for (;;) {
  Atomics.wait(ctl, ${Ctl.generation}, seen);
  seen = Atomics.load(ctl, ${Ctl.generation});
  if (seen < 0) break;
  probes[${JSON.stringify(PROBES)}[Atomics.load(ctl, ${Ctl.probe})]](Atomics.load(ctl, ${Ctl.arg0}) >>> 0, Atomics.load(ctl, ${Ctl.arg1}) >>> 0);
  Atomics.store(ctl, ${Ctl.done}, seen);
  Atomics.notify(ctl, ${Ctl.done});
}
`;

/** fma(iterations), tile(passes), read(from, to); a probe of one argument ignores the second. */
type Probes = Record<(typeof PROBES)[number], (arg0: number, arg1: number) => number>;

/** Floating-point operations an iteration: 10 multiply–adds of 4 lanes; a pass of the tile, 256 steps of 8. */
const FMA_FLOPS = 80;
const TILE_FLOPS = 256 * 64;

let assembled: Promise<Uint8Array<ArrayBuffer>> | null = null;

/** The probes' binary (importing a shared memory), assembled once per process. */
export async function probeBytes(): Promise<Uint8Array<ArrayBuffer>> {
  assembled ??= (async () => {
    const { assembleWat } = (await import(pathToFileURL(path.join(benchDir, '..', 'scripts', 'build-kernels.mjs')).href)) as {
      assembleWat(watPath: string, shared?: boolean): Promise<Uint8Array>;
    };
    return Uint8Array.from(await assembleWat(path.join(benchDir, 'machine-ceiling.wat'), true));
  })();
  return assembled;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number) => Math.round(x * 10) / 10;

/**
 * Measures both ceilings with `threads` (1 or 2) threads running the probe at the same time. Throws where the
 * runtime has no relaxed SIMD (Node 20 gets it from a flag that the kernels set; Electron has it).
 */
export async function measureCeiling(threads: number, options: CeilingOptions = {}): Promise<MachineCeiling> {
  const trials = options.trials ?? 5;
  const readBytes = Math.ceil((options.readBytes ?? 64 * 2 ** 20) / PAGE) * PAGE;
  const bytes = await probeBytes();
  if (!relaxedSimdValidates(bytes)) throw new Error('the machine-ceiling probe needs relaxed SIMD (the kernels\' fused multiply–add)');
  return withProbes(bytes, threads, readBytes, (run) => {
    // Until V8's optimizing tier has the probes (it replaces code between calls, never within one).
    for (let i = 0; i < 3; i++) run(Probe.fma, 2_000_000, 0), run(Probe.tile, 10_000, 0), run(Probe.read, PAGE, 2 * PAGE);
    // Iterations for about computeMs a trial at ~50 GFLOP/s a core.
    const iterations = (flops: number) => Math.max(1000, Math.round((((options.computeMs ?? 80) / 1000) * 50e9) / flops));
    const rate = (probe: Probe, flops: number) => {
      const n = iterations(flops);
      return median(Array.from({ length: trials }, () => (threads * n * flops) / run(probe, n, 0) / 1e9));
    };
    const fma = rate(Probe.fma, FMA_FLOPS);
    const tile = rate(Probe.tile, TILE_FLOPS);
    const read = median(Array.from({ length: trials }, () => (threads * readBytes) / run(Probe.read, PAGE, PAGE + readBytes) / 1e9));
    return { threads, fma_gflops: round(fma), tile_gflops: round(tile), read_gb_per_s: round(read) };
  });
}

/**
 * Runs `body` with a function that starts a probe on every thread at once (the read probe each on its own
 * stretch of memory) and returns the seconds until all have finished.
 */
async function withProbes<T>(
  bytes: Uint8Array<ArrayBuffer>,
  threads: number,
  readBytes: number,
  body: (run: (probe: Probe, arg0: number, arg1: number) => number) => T,
): Promise<T> {
  const pages = 1 + (readBytes / PAGE) * threads;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const floats = new Float32Array(memory.buffer);
  // The multiply–add operands (bytes 0–31), the tile's x block and panel (4096–16383): sums stay finite.
  floats.fill(1e-3, 0, 16384 / 4);
  // Written, so that reading gets real pages rather than the kernel's shared zero page.
  floats.fill(1, PAGE / 4);
  const module = new WebAssembly.Module(bytes);
  const probes = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Probes;
  const control = new SharedArrayBuffer(4 * 8);
  const ctl = new Int32Array(control);
  const helpers: Worker[] = [];
  try {
    for (let t = 1; t < threads; t++) {
      const helper = new Worker(HELPER, { eval: true, workerData: { module, memory, control } });
      helpers.push(helper);
      await new Promise<void>((resolve, reject) => {
        helper.once('message', () => resolve());
        helper.once('error', reject);
      });
    }
    let generation = 0;
    const run = (probe: Probe, arg0: number, arg1: number): number => {
      generation++;
      Atomics.store(ctl, Ctl.probe, probe);
      // The helper reads the next stretch; the other probes' argument is their iteration count.
      const stretch = probe === Probe.read ? readBytes : 0;
      Atomics.store(ctl, Ctl.arg0, arg0 + stretch);
      Atomics.store(ctl, Ctl.arg1, arg1 + stretch);
      const t0 = performance.now();
      if (helpers.length > 0) {
        Atomics.store(ctl, Ctl.generation, generation);
        Atomics.notify(ctl, Ctl.generation);
      }
      probes[PROBES[probe]](arg0, arg1);
      while (helpers.length > 0 && Atomics.load(ctl, Ctl.done) !== generation) Atomics.wait(ctl, Ctl.done, Atomics.load(ctl, Ctl.done), 10);
      return (performance.now() - t0) / 1000;
    };
    return body(run);
  } finally {
    Atomics.store(ctl, Ctl.generation, -1);
    Atomics.notify(ctl, Ctl.generation);
    await Promise.all(helpers.map((h) => h.terminate()));
  }
}
