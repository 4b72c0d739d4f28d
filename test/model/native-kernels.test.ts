import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { f32Kernels, relaxedSimdValidates } from '../../worker/model/kernels/f32/f32.js';
import { nativeKernels, nativeKernelsNote, type NativeKernels } from '../../worker/model/kernels/native/native.js';
import { loadQ8Kernels } from '../../worker/model/kernels/q8/q8.js';

/** Whether this machine should have them: our machines (and CI's) are x86-64 Linux with AVX2 and FMA. */
function cpuHasAvx2Fma(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].split(/\s+/) ?? [];
  return flags.includes('avx2') && flags.includes('fma');
}
const expected = cpuHasAvx2Fma();
const skip = expected ? false : 'needs x86-64 Linux with AVX2 and FMA';

test('the native kernels are built by npm ci and load on an x86-64 CPU with AVX2 and FMA', { skip }, () => {
  assert.ok(nativeKernels(), `no native kernels: ${nativeKernelsNote()}`);
  assert.equal(nativeKernelsNote(), null);
});

type Panels = (x: number, rows: number, k: number, ldx: number, w: number, n: number, ldw: number, bias: number, out: number, ldo: number, scratch: number) => void;

/** A WebAssembly kernel itself (f32-fma.wat's gemm_panels, f32.wat's gemm_nn), on `memory`: what the native ones must match bit for bit. */
function wasmKernel(memory: WebAssembly.Memory, module: 'f32-fma' | 'f32', name: 'gemm_panels' | 'gemm_nn'): Panels {
  const file = `${module}${memory.buffer instanceof SharedArrayBuffer ? '.shared' : ''}.wasm`;
  const bytes = readFileSync(new URL(`../../worker/model/kernels/f32/${file}`, import.meta.url));
  assert.ok(relaxedSimdValidates(bytes));
  return (new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as Record<string, Panels>)[name];
}
const wasmPanels = (memory: WebAssembly.Memory) => wasmKernel(memory, 'f32-fma', 'gemm_panels');

/** A product's operands laid out in `memory` with padded strides, filled with awkward values. */
function layout(memory: WebAssembly.Memory, rows: number, k: number, n: number, pad: number) {
  let top = 256 + 4 * pad;
  const take = (floats: number) => {
    const at = top;
    top += 4 * floats + 4 * pad;
    return at;
  };
  const [ldx, ldw, ldo] = [k + pad, n + pad, n + 2 * pad];
  const at = { ldx, ldw, ldo, x: take(rows * ldx), w: take(k * ldw), bias: take(n), out: take(rows * ldo), out2: take(rows * ldo), scratch: take(64 * k + 4 * Math.ceil(rows / 4) * k) };
  assert.ok(top <= memory.buffer.byteLength, 'the test memory holds the operands');
  const f = new Float32Array(memory.buffer);
  for (let i = 0; i < top / 4; i++) f[i] = Math.sin(i * 0.618 + rows) * (1 + (i % 5)) * (i % 11 === 0 ? 1e-3 : 1);
  return at;
}

for (const shared of [false, true]) {
  test(`the native gemm gives f32-fma.wat's bits on every shape (${shared ? 'shared' : 'plain'} memory)`, { skip }, () => {
    const memory = new WebAssembly.Memory({ initial: 160, maximum: 400, shared });
    const native = nativeKernels()!;
    const theirs = wasmPanels(memory);
    const heap = new Uint8Array(memory.buffer);
    // Rows around the 6-row tile (and 4-row blocks there), columns with 16-, 8- and single-column tails.
    const shapes = [[5, 16, 16], [6, 33, 24], [7, 40, 45], [12, 768, 64], [13, 100, 200], [37, 50, 8], [64, 96, 40], [130, 64, 77], [9, 3, 5]];
    for (const [rows, k, n] of shapes) {
      for (const [pad, withBias] of [[0, true], [3, false]] as const) {
        const at = layout(memory, rows, k, n, pad);
        const bias = withBias ? at.bias : 0;
        const f = new Float32Array(memory.buffer);
        const before = f.slice(at.out2 / 4, at.out2 / 4 + rows * at.ldo);
        theirs(at.x, rows, k, at.ldx, at.w, n, at.ldw, bias, at.out, at.ldo, at.scratch);
        native.gemmPanels(heap, at.x, rows, k, at.ldx, at.w, n, at.ldw, bias, at.out2, at.ldo, at.scratch);
        let [differ, touched] = [0, 0];
        for (let r = 0; r < rows; r++) {
          for (let j = 0; j < at.ldo; j++) {
            const [mine, wasm] = [f[at.out2 / 4 + r * at.ldo + j], f[at.out / 4 + r * at.ldo + j]];
            if (j < n && !Object.is(mine, wasm)) differ++;
            if (j >= n && !Object.is(mine, before[r * at.ldo + j])) touched++;
          }
        }
        assert.equal(differ, 0, `[${rows}, ${k}]·[${k}, ${n}] pad ${pad} bias ${withBias}: ${differ} floats differ`);
        assert.equal(touched, 0, 'the columns between n and the stride are left alone');
      }
    }
  });
}

for (const shared of [false, true]) {
  test(`the native products of 1 to 4 rows give f32.wat gemm_nn's bits (XNNPACK's) on every shape (${shared ? 'shared' : 'plain'} memory)`, { skip }, () => {
    const memory = new WebAssembly.Memory({ initial: 160, maximum: 400, shared });
    const native = nativeKernels()!;
    const theirs = wasmKernel(memory, 'f32', 'gemm_nn');
    const heap = new Uint8Array(memory.buffer);
    // k with 0 to 3 inputs after the last group of four (one row) or one after the last pair (more); n with 8-,
    // 4- and single-column tails.
    for (const rows of [1, 2, 3, 4]) {
      for (const [k, n] of [[768, 256], [97, 30], [3, 19], [50, 12], [200, 72], [33, 5], [1, 8], [4, 1]]) {
        for (const [pad, withBias] of [[0, true], [5, false]] as const) {
          const at = layout(memory, rows, k, n, pad);
          const bias = withBias ? at.bias : 0;
          theirs(at.x, rows, k, at.ldx, at.w, n, at.ldw, bias, at.out, at.ldo, at.scratch);
          native.gemmRows(heap, at.x, rows, k, at.ldx, at.w, n, at.ldw, bias, at.out2, at.ldo, at.scratch);
          const f = new Float32Array(memory.buffer);
          for (let r = 0; r < rows; r++) {
            const [mine, wasm] = [at.out2, at.out].map((o) => f.slice(o / 4 + r * at.ldo, o / 4 + r * at.ldo + n));
            assert.deepEqual(mine, wasm, `row ${r} of [${rows}, ${k}]·[${k}, ${n}] pad ${pad} bias ${withBias}`);
          }
        }
      }
    }
    assert.throws(() => native.gemmRows(heap, 0, 5, 4, 4, 256, 4, 4, 0, 512, 4, 1024), RangeError, 'at most 4 rows');
  });
}

test("the native int8 product gives q8.wat's q8_matvec bits for 1 to 4 vectors, and loadQ8Kernels uses it", { skip }, () => {
  const memory = new WebAssembly.Memory({ initial: 200 });
  const heap = new Uint8Array(memory.buffer);
  const f = new Float32Array(memory.buffer);
  const theirs = (new WebAssembly.Instance(new WebAssembly.Module(readFileSync(new URL('../../worker/model/kernels/q8/q8.wasm', import.meta.url))), {
    env: { memory },
  }).exports as { q8_matvec: (...args: number[]) => void }).q8_matvec;
  const kernels = loadQ8Kernels(memory);
  assert.equal(kernels.native, true);
  let seed = 7;
  const byte = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  for (const [inDim, outDim] of [[32, 5], [64, 33], [768, 96], [3072, 40]]) {
    const groups = inDim / 32;
    const [w, ws, xq, xs, bias, y1, y2] = [0, 1, 2, 3, 4, 5, 6].map((i) => 4096 + i * 2 ** 20);
    for (let i = 0; i < outDim * inDim; i++) heap[w + i] = byte(); // every code, -128 and 127 among them
    for (let i = 0; i < 4 * inDim; i++) heap[xq + i] = byte();
    for (let i = 0; i < outDim * groups; i++) f[ws / 4 + i] = (byte() + 1) * 1.37e-4;
    for (let i = 0; i < 4 * groups; i++) f[xs / 4 + i] = (byte() + 1) * 2.11e-3;
    for (let i = 0; i < outDim; i++) f[bias / 4 + i] = (byte() - 128) * 0.013;
    for (const nX of [1, 2, 3, 4]) {
      for (const [rowStart, rowEnd, b] of [[0, outDim, bias], [1, outDim - 1, 0]]) {
        f.fill(0.5, y1 / 4, y1 / 4 + 4 * outDim);
        f.fill(0.5, y2 / 4, y2 / 4 + 4 * outDim);
        theirs(w, ws, xq, xs, y1, b, inDim, rowStart, rowEnd, nX, outDim);
        kernels.q8Matvec(w, ws, xq, xs, y2, b, inDim, rowStart, rowEnd, nX, outDim);
        assert.deepEqual(f.slice(y2 / 4, y2 / 4 + 4 * outDim), f.slice(y1 / 4, y1 / 4 + 4 * outDim), `[${outDim}, ${inDim}] × ${nX} rows ${rowStart}–${rowEnd}`);
      }
    }
  }
  const native = nativeKernels()!;
  const ok: Parameters<NativeKernels['q8Matvec']> extends [Uint8Array, ...infer Rest] ? Rest : never = [0, 8192, 9216, 10240, 12288, 0, 64, 0, 16, 2, 16];
  for (const [what, index, value] of [['in_dim not a multiple of 32', 6, 48], ['5 vectors', 9, 5], ['rows past out_dim', 8, 17], ['weights past the end', 0, heap.byteLength - 512]] as const) {
    const args: typeof ok = [...ok];
    args[index] = value;
    assert.throws(() => native.q8Matvec(heap, ...args), RangeError, what);
  }
  native.q8Matvec(heap, ...ok);
});

test('f32Kernels runs prompts on the native kernels, also after the memory grows', { skip }, () => {
  const memory = new WebAssembly.Memory({ initial: 40, maximum: 400 });
  const kernels = f32Kernels(memory);
  assert.equal(kernels.native, true);
  assert.equal(kernels.fused, true);
  const [rows, k, n] = [8, 32, 16];
  const check = () => {
    const at = layout(memory, rows, k, n, 0);
    const base = memory.buffer.byteLength - 4 * (rows * n);
    kernels.gemmNN(at.x, rows, k, at.ldx, at.w, n, at.ldw, at.bias, base, n, at.scratch);
    wasmPanels(memory)(at.x, rows, k, at.ldx, at.w, n, at.ldw, at.bias, at.out, n, at.scratch);
    const f = new Float32Array(memory.buffer);
    assert.deepEqual(f.slice(base / 4, base / 4 + rows * n), f.slice(at.out / 4, at.out / 4 + rows * n));
  };
  check();
  memory.grow(20); // detaches the view the kernels held; the output now lies where the old heap ended
  check();
});

test('a matrix outside the heap, or sizes that disagree, are a RangeError and nothing is written', { skip }, () => {
  const native: NativeKernels = nativeKernels()!;
  const memory = new WebAssembly.Memory({ initial: 4 });
  const heap = new Uint8Array(memory.buffer);
  const end = heap.byteLength;
  const before = heap.slice();
  type Args = Parameters<NativeKernels['gemmPanels']> extends [Uint8Array, ...infer Rest] ? Rest : never;
  const ok: Args = [0, 8, 16, 16, 4096, 16, 16, 0, 8192, 16, 16384]; // x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch
  const bad: Array<[string, number, number]> = [
    ['output past the end', 8, end - 100],
    ['weights past the end', 4, end - 64],
    ['scratch past the end', 10, end - 16],
    ['bias past the end', 7, end - 8],
    ['a negative offset', 0, -4],
    ['a misaligned offset', 0, 2],
    ['no rows', 1, 0],
    ['a stride shorter than a row', 3, 8],
    ['an offset beyond 4 GiB', 4, 2 ** 40],
  ];
  for (const [what, index, value] of bad) {
    const args: Args = [...ok];
    args[index] = value;
    assert.throws(() => native.gemmPanels(heap, ...args), RangeError, what);
  }
  assert.deepEqual(heap, before);
  assert.throws(() => native.gemmPanels(new Float32Array(4) as unknown as Uint8Array, ...ok), TypeError);
  native.gemmPanels(heap, ...ok); // the same call with its own arguments runs
});

test('INKLING_NATIVE=off runs prompts on the WebAssembly kernels, and says so', () => {
  const script = `
    import { f32Kernels } from './worker/model/kernels/f32/f32.js';
    import { nativeKernelsNote } from './worker/model/kernels/native/native.js';
    const kernels = f32Kernels(new WebAssembly.Memory({ initial: 1 }));
    console.log(JSON.stringify({ native: kernels.native, fused: kernels.fused, note: nativeKernelsNote() }));`;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const output = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, INKLING_NATIVE: 'off' },
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(output), { native: false, fused: true, note: 'INKLING_NATIVE=off' });
});

test('npm ci goes on when the native kernels cannot be built: a warning with --optional, an error without; the addon in place stays', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const addon = path.join(root, 'worker', 'model', 'kernels', 'native', 'inkling-native.node');
  const before = existsSync(addon) ? statSync(addon).mtimeMs : null;
  const env = { ...process.env, INKLING_NODE_GYP: path.join(root, 'no-such-node-gyp'), INKLING_NATIVE: '' };
  const run = (...args: string[]) => spawnSync(process.execPath, ['scripts/build-native.mjs', ...args], { cwd: root, env, encoding: 'utf8' });
  const optional = run('--optional');
  assert.equal(optional.status, 0, optional.stderr);
  assert.match(optional.stderr, /native kernels not built: node-gyp failed \(spawnSync .*no-such-node-gyp ENOENT\)/);
  assert.match(optional.stderr, /its matrix products then run on the WebAssembly kernels/);
  const required = run();
  assert.equal(required.status, 1);
  assert.match(required.stderr, /native kernels not built/);
  assert.equal(existsSync(addon) ? statSync(addon).mtimeMs : null, before, 'the addon in place is neither removed nor rewritten');
});
