/**
 * The k-th largest of a row of scores without sorting it: top-k sampling (generate/processors.ts) and the
 * screened output layer (model/output-screen.ts) both need it once per token over the whole vocabulary.
 */

/** The k-th largest value of `values` (1-based), using `heap` (length ≥ k) as scratch. */
export function kthLargest(values: Float32Array, k: number, heap: Float32Array): number {
  for (let i = 0; i < k; i++) siftUp(heap, i, values[i]);
  for (let i = k; i < values.length; i++) {
    const v = values[i];
    if (v > heap[0]) siftDown(heap, k, v);
  }
  return heap[0];
}

function siftUp(heap: Float32Array, index: number, value: number): void {
  let i = index;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent] <= value) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = value;
}

/** Replaces the heap's minimum with `value` and restores the heap. */
function siftDown(heap: Float32Array, size: number, value: number): void {
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= size) break;
    const right = left + 1;
    const child = right < size && heap[right] < heap[left] ? right : left;
    if (heap[child] >= value) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = value;
}

