/**
 * TensorFlow.js's WebAssembly heap as *shared* memory, so that the engine's second thread (worker/model/parallel)
 * multiplies its share of the weights where they already lie instead of holding a copy of them: for GPT-2
 * small with two threads, 236 MiB less.
 *
 * tfjs's single-threaded SIMD build declares its own memory, not shared. Declaring it shared changes nothing
 * for the code in it (loads and stores are the same instructions; only atomics differ, and it has none) nor for
 * tfjs's JavaScript, which reads the heap through typed arrays and copies results out. A memory that is shared
 * must have a maximum; tfjs's already has one (4 GiB). So the binary is the package's own with one byte of its
 * memory section changed, written once to a cache folder and handed to the backend with `setWasmPaths`.
 *
 * Why not tfjs's threaded build, which has a shared heap: it starts its pthreads from a `blob:` URL, which
 * Node's Worker refuses. `INKLING_SHARED_HEAP=off` keeps the package's binary (the partner then holds a copy).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

export const SHARED_HEAP_ENV = 'INKLING_SHARED_HEAP';

/** The three binaries the wasm backend may ask for; only the SIMD one (the one Node runs) is changed. */
export const WASM_BINARIES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'] as const;
const SIMD = 'tfjs-backend-wasm-simd.wasm';

const MEMORY_SECTION = 5;
const LIMITS_MAX = 0x01;
const LIMITS_SHARED = 0x02;
const MAX_PAGES = 65536;

function readLeb(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (at >= bytes.length) throw new RangeError('truncated LEB128 number');
    const byte = bytes[at++];
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if (!(byte & 0x80)) return [value, at];
  }
}

function leb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
}

/**
 * `binary` with its one defined memory declared shared (maximum kept, or 4 GiB where it had none). Throws when
 * the module has no memory section of its own, or more than one memory.
 */
export function withSharedMemory(binary: Uint8Array): Uint8Array<ArrayBuffer> {
  let at = 8; // magic and version
  while (at < binary.length) {
    const id = binary[at];
    const [size, body] = readLeb(binary, at + 1);
    if (id === MEMORY_SECTION) {
      const [count, limitsAt] = readLeb(binary, body);
      if (count !== 1) throw new Error(`the module declares ${count} memories, expected 1`);
      const flags = binary[limitsAt];
      const [initial, next] = readLeb(binary, limitsAt + 1);
      const maximum = flags & LIMITS_MAX ? readLeb(binary, next)[0] : MAX_PAGES;
      const section = [...leb(1), LIMITS_MAX | LIMITS_SHARED, ...leb(initial), ...leb(maximum)];
      const out = new Uint8Array(binary.length - (body + size - at) + 1 + leb(section.length).length + section.length);
      out.set(binary.subarray(0, at));
      out.set([MEMORY_SECTION, ...leb(section.length), ...section], at);
      out.set(binary.subarray(body + size), at + 1 + leb(section.length).length + section.length);
      return out;
    }
    at = body + size;
  }
  throw new Error('the module has no memory section of its own');
}

/** Where the wasm backend's binaries are: INKLING_WASM_DIR (the packaged app) or the package's dist folder. */
function wasmDir(dir: string | undefined): string {
  if (dir) return dir;
  return path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
}

/**
 * The file map for `setWasmPaths` that gives the backend a shared heap: the SIMD binary rewritten into a cache
 * folder (named by the original's hash, so once per tfjs version), the others as they are. `dir`: the
 * binaries' folder when they are not in the package (INKLING_WASM_DIR). Throws when it cannot be made or this
 * runtime would refuse it; the caller keeps the plain binaries then (the backend cannot be started twice, so
 * the check is made before, not by trying).
 */
export function sharedHeapWasmPaths(dir?: string, cacheDir = path.join(os.tmpdir(), 'inkling-wasm')): Record<string, string> {
  if (typeof SharedArrayBuffer === 'undefined') throw new Error('this runtime has no SharedArrayBuffer');
  const from = wasmDir(dir);
  const original = readFileSync(path.join(from, SIMD));
  const shared = withSharedMemory(original);
  // ~5 ms: whether this runtime takes a module whose memory is shared.
  if (!WebAssembly.validate(shared)) throw new Error('this runtime refuses a shared memory in the backend’s module');
  const hash = createHash('sha256').update(original).digest('hex').slice(0, 16);
  const target = path.join(cacheDir, `${hash}-${SIMD}`);
  // Compared, not just found: a file damaged since (a full disk, a crash) is written again.
  if (!existsSync(target) || !readFileSync(target).equals(shared)) {
    mkdirSync(cacheDir, { recursive: true });
    // Written beside, then renamed: processes starting at once never read a half-written file.
    const partial = `${target}.${process.pid}.partial`;
    writeFileSync(partial, shared);
    renameSync(partial, target);
  }
  return Object.fromEntries(WASM_BINARIES.map((name) => [name, name === SIMD ? target : path.join(from, name)]));
}

/** Whether the backend's heap is shared memory (so another thread can read the weights in place). */
export function isSharedHeap(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}
