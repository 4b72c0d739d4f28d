/**
 * The memory a GPT2Model's thread shares with its product partner, and where in it the partner's numbers go.
 * Both threads see the same bytes, so the partner's kernels (kernels/f32) read its weights and each job's
 * input and write its result in place, addressed by byte offsets.
 *
 * - `HeapPlace`: the wasm backend's own heap, where it is shared memory (worker/wasm-shared-heap.ts). The
 *   partner's share of the weights is read where the model keeps it: no copy at all. Its inputs, outputs and
 *   scratch are buffers of the backend's.
 * - `SharedArena`: a shared memory of its own, when the backend's heap is not shared. It holds a copy of the
 *   partner's share, written once from the model's weights, and the jobs' numbers.
 *
 * Either way reservations only move forward (input/output space is re-placed, larger, on the few occasions a
 * bigger job comes), so byte offsets stay valid while the partner lives.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { BackendMemory } from '../kernels/backend-memory.js';

export interface SharedPlace {
  readonly memory: WebAssembly.Memory;
  /** Byte offset of `floats` new float32 values (uninitialised); null when there is no room. */
  reserve(floats: number): number | null;
  /** A view of `floats` values at byte offset `at` (shared memory is never detached: views stay valid). */
  f32(at: number, floats: number): Float32Array;
  /** Gives back what was reserved. Only once the partner thread has exited: it may still be writing there. */
  release(): void;
}

const PAGE = 65536;
const ALIGN = 16;

export class SharedArena implements SharedPlace {
  readonly memory: WebAssembly.Memory;
  private used = 0;

  /** Room for `bytes` now, growable to `maxBytes`. */
  constructor(bytes: number, readonly maxBytes: number) {
    const maximum = Math.ceil(maxBytes / PAGE);
    this.memory = new WebAssembly.Memory({ initial: Math.min(maximum, Math.ceil(bytes / PAGE)), maximum, shared: true });
  }

  get usedBytes(): number {
    return this.used;
  }

  reserve(floats: number): number | null {
    const at = Math.ceil(this.used / ALIGN) * ALIGN;
    const end = at + floats * 4;
    if (end > this.maxBytes) return null;
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.used = end;
    return at;
  }

  /** Places a copy of `values`; throws if there is no room (the arena is sized for its weights). */
  put(values: Float32Array): number {
    const at = this.reserve(values.length);
    if (at === null) throw new RangeError(`SharedArena: no room for ${values.length} more floats`);
    this.f32(at, values.length).set(values);
    return at;
  }

  f32(at: number, floats: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, floats);
  }

  /** Nothing to do: the memory goes with the last reference to it (the partner's, once it has exited). */
  release(): void {}
}

/** Buffers of the wasm backend's heap, which must be shared memory (`memory.heap` over a SharedArrayBuffer). */
export class HeapPlace implements SharedPlace {
  readonly memory: WebAssembly.Memory;
  private readonly buffers: tf.TensorInfo[] = [];

  constructor(private readonly backend: BackendMemory) {
    if (!backend.heap) throw new TypeError('HeapPlace: the backend has no WebAssembly heap');
    this.memory = backend.heap.memory;
  }

  reserve(floats: number): number {
    const info = this.backend.alloc([Math.max(1, floats)]);
    this.buffers.push(info);
    return this.backend.heap!.offset(info);
  }

  f32(at: number, floats: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, floats);
  }

  release(): void {
    for (const info of this.buffers.splice(0)) {
      try {
        this.backend.free(info);
      } catch {
        // The backend itself is gone (and its heap with it).
      }
    }
  }
}
