/**
 * The memory a GPT2Model's thread shares with its product partner: one shared WebAssembly.Memory holding the
 * partner's share of the weights and the jobs' inputs, outputs and scratch. Both threads see the same bytes,
 * so the model's thread writes the partner's weights and each job's input straight into it, and the partner's
 * kernels (kernels/f32) read and write there in place: no copies on the partner's side, no second heap.
 *
 * Allocation only moves forward (the weights are placed once; input/output space is re-placed, larger, on
 * the few occasions a bigger job comes), so byte offsets stay valid for the memory's life.
 */
const PAGE = 65536;
const ALIGN = 16;

export class SharedArena {
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

  /** Byte offset of `floats` new float32 values (uninitialised), growing the memory; null beyond maxBytes. */
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

  /** A view of `floats` values at byte offset `at` (views stay valid: shared memory is never detached). */
  f32(at: number, floats: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, floats);
  }
}
