// Byte-level BPE: GPT-2's pre-tokenizer, then merges over the UTF-8 bytes of each piece.
//
// Written here rather than using js-tiktoken's encoder for two reasons (measured on Emma, one core):
// js-tiktoken 1.0.21 encodes English prose at about 1.2–1.4 MB/s (it keys every rank lookup by
// `bytes.join(",")` and keeps no per-word cache), below the 2 MB/s we need; and it runs the
// pattern with JavaScript's `\s`, which differs from GPT-2's on U+0085 and U+FEFF (see
// pretokenize.ts). js-tiktoken still supplies the GPT-2 vocabulary (gpt2.ts).

import type { EncodeOptions, Tokenizer } from './types.js';
import { utf8Encode } from './bytes.js';
import { gpt2PretokenizeRegex } from './pretokenize.js';

/** Every token's bytes in one buffer, token `id` being bytes[offsets[id], offsets[id + 1]): no object per token. */
export interface PackedTokens {
  readonly bytes: Uint8Array;
  readonly offsets: Int32Array;
}

export interface BpeSpec {
  /** Raw bytes of every id (null marks an id the vocabulary does not use), or all of them packed (every id used). */
  readonly tokens: ReadonlyArray<Uint8Array | null> | PackedTokens;
  /** Merges, highest priority first: [left id, right id, merged id]; or the rules already made from them. */
  readonly merges: ReadonlyArray<readonly [number, number, number]> | MergeRules;
  /** Special tokens (content → id), matched in text only with `allowSpecial`. */
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly eosTokenId: number | null;
}

const NO_MERGE = 0x7fffffff;

/**
 * (left id, right id) → merge priority, as open addressing over typed arrays: a Map keyed by
 * `left * vocabSize + right` would hash doubles (the product passes 2^31 for GPT-2), and this
 * lookup is the inner loop of every cache miss.
 */
class PairTable {
  private left: Int32Array;
  private right: Int32Array;
  private rank: Int32Array;
  private mask: number;
  private count = 0;

  constructor(expected: number) {
    let capacity = 16;
    while (capacity < expected * 2) capacity *= 2;
    this.left = new Int32Array(capacity).fill(-1);
    this.right = new Int32Array(capacity);
    this.rank = new Int32Array(capacity);
    this.mask = capacity - 1;
  }

  private slot(a: number, b: number): number {
    return (Math.imul(Math.imul(a, 0x9e3779b1) ^ b, 0x85ebca6b) ^ (a >>> 7)) & this.mask;
  }

  get(a: number, b: number): number {
    const left = this.left;
    for (let i = this.slot(a, b); ; i = (i + 1) & this.mask) {
      const l = left[i];
      if (l === -1) return NO_MERGE;
      if (l === a && this.right[i] === b) return this.rank[i];
    }
  }

  /** Keeps the first rank given for a pair (a repeated merge line cannot outrank itself). */
  add(a: number, b: number, rank: number): void {
    if ((this.count + 1) * 2 > this.left.length) this.grow();
    for (let i = this.slot(a, b); ; i = (i + 1) & this.mask) {
      if (this.left[i] === -1) {
        this.left[i] = a;
        this.right[i] = b;
        this.rank[i] = rank;
        this.count++;
        return;
      }
      if (this.left[i] === a && this.right[i] === b) return;
    }
  }

  private grow(): void {
    const { left, right, rank } = this;
    this.left = new Int32Array(left.length * 2).fill(-1);
    this.right = new Int32Array(left.length * 2);
    this.rank = new Int32Array(left.length * 2);
    this.mask = this.left.length - 1;
    this.count = 0;
    for (let i = 0; i < left.length; i++) if (left[i] !== -1) this.add(left[i], right[i], rank[i]);
  }
}

/** Above this many bytes a piece is merged with a heap (O(n log n)) instead of rescans (O(n²)). */
const SHORT_PIECE = 64;
/** Heap keys pack rank * 2^32 + position into a double, exact while rank < 2^21. */
const MAX_MERGES = 1 << 21;
const POS_SCALE = 2 ** 32;

/**
 * The merge rule, for every piece: repeatedly merge the adjacent pair with the best (lowest)
 * priority, the leftmost one on ties, until no adjacent pair has a merge. That is Hugging Face
 * tokenizers' rule; for a vocabulary whose merges only use tokens made by earlier merges (GPT-2's
 * and any trained one) it gives the same result as GPT-2's encoder.py, which merges all
 * occurrences of the best pair at once.
 */
export class MergeRules {
  private readonly pairs: PairTable;
  private readonly mergedIds: number[] = [];
  private pairRanks = new Int32Array(0);
  private heap = new Float64Array(256);
  private next = new Int32Array(256);
  private prev = new Int32Array(256);

  /** `shortPieceLimit` only exists so tests can run both merge paths on the same pieces. */
  constructor(
    expected: number,
    private readonly shortPieceLimit = SHORT_PIECE,
  ) {
    this.pairs = new PairTable(expected);
  }

  get size(): number {
    return this.mergedIds.length;
  }

  add(left: number, right: number, merged: number): void {
    if (this.mergedIds.length >= MAX_MERGES) throw new RangeError(`more than ${MAX_MERGES} merges`);
    this.pairs.add(left, right, this.mergedIds.length);
    this.mergedIds.push(merged);
  }

  /** Merges `ids[0, n)` in place and returns the new length. */
  apply(ids: Int32Array, n: number): number {
    return n <= this.shortPieceLimit ? this.applyShort(ids, n) : this.applyLong(ids, n);
  }

  private applyShort(ids: Int32Array, n: number): number {
    if (this.pairRanks.length < n) this.pairRanks = new Int32Array(Math.max(n, SHORT_PIECE));
    const ranks = this.pairRanks;
    const pairs = this.pairs;
    for (let i = 0; i < n - 1; i++) ranks[i] = pairs.get(ids[i], ids[i + 1]);
    while (n > 1) {
      let best = NO_MERGE;
      let at = -1;
      for (let i = 0; i < n - 1; i++) {
        if (ranks[i] < best) {
          best = ranks[i];
          at = i;
        }
      }
      if (at < 0) break;
      ids[at] = this.mergedIds[best];
      ids.copyWithin(at + 1, at + 2, n);
      ranks.copyWithin(at + 1, at + 2, n - 1);
      n--;
      if (at > 0) ranks[at - 1] = pairs.get(ids[at - 1], ids[at]);
      if (at < n - 1) ranks[at] = pairs.get(ids[at], ids[at + 1]);
    }
    return n;
  }

  // Same rule as applyShort, for long pieces (a paragraph of Chinese is one piece): symbols form
  // a linked list over their start positions and candidate pairs wait in a min-heap keyed by
  // (rank, position). An entry is stale once the pair at its position has changed; it is then
  // skipped, which leaves the heap's minimum equal to the best current pair.
  private applyLong(ids: Int32Array, n: number): number {
    if (this.next.length < n) {
      this.next = new Int32Array(n);
      this.prev = new Int32Array(n);
    }
    const { next, prev, pairs } = this;
    let size = 0;
    const push = (rank: number, pos: number) => {
      if (size === this.heap.length) {
        const bigger = new Float64Array(size * 2);
        bigger.set(this.heap);
        this.heap = bigger;
      }
      const heap = this.heap;
      const key = rank * POS_SCALE + pos;
      let i = size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (heap[parent] <= key) break;
        heap[i] = heap[parent];
        i = parent;
      }
      heap[i] = key;
    };
    const pop = (): number => {
      const heap = this.heap;
      const top = heap[0];
      const last = heap[--size];
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= size) break;
        if (child + 1 < size && heap[child + 1] < heap[child]) child++;
        if (heap[child] >= last) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
      return top;
    };

    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
      if (i + 1 < n) {
        const rank = pairs.get(ids[i], ids[i + 1]);
        if (rank !== NO_MERGE) push(rank, i);
      }
    }
    while (size > 0) {
      const key = pop();
      const rank = Math.floor(key / POS_SCALE);
      const pos = key - rank * POS_SCALE;
      const right = next[pos];
      if (ids[pos] < 0 || right < 0 || pairs.get(ids[pos], ids[right]) !== rank) continue;
      ids[pos] = this.mergedIds[rank];
      ids[right] = -1;
      const after = next[right];
      next[pos] = after;
      if (after >= 0) prev[after] = pos;
      const before = prev[pos];
      if (before >= 0) {
        const r = pairs.get(ids[before], ids[pos]);
        if (r !== NO_MERGE) push(r, before);
      }
      if (after >= 0) {
        const r = pairs.get(ids[pos], ids[after]);
        if (r !== NO_MERGE) push(r, pos);
      }
    }
    let count = 0;
    for (let i = 0; i >= 0; i = next[i]) ids[count++] = ids[i];
    return count;
  }
}

function packTokens(tokens: ReadonlyArray<Uint8Array | null>): PackedTokens & { used: Uint8Array } {
  let total = 0;
  for (const t of tokens) total += t ? t.length : 0;
  const bytes = new Uint8Array(total);
  const offsets = new Int32Array(tokens.length + 1);
  const used = new Uint8Array(tokens.length);
  let at = 0;
  for (let id = 0; id < tokens.length; id++) {
    const t = tokens[id];
    offsets[id] = at;
    if (!t) continue;
    used[id] = 1;
    bytes.set(t, at);
    at += t.length;
  }
  offsets[tokens.length] = at;
  return { bytes, offsets, used };
}

/** Pieces longer than this are not cached: long pieces rarely repeat and would hold memory. */
const MAX_CACHED_PIECE = 48;
/** The cache is dropped whole when it reaches this many pieces (a plain bound, cheap to check). */
const MAX_CACHE_ENTRIES = 100_000;

export class BpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly eosTokenId: number | null;
  private readonly bytes: Uint8Array;
  /** Token `id` is bytes[offsets[id], offsets[id + 1]). */
  private readonly offsets: Int32Array;
  private readonly used: Uint8Array;
  private readonly byteIds = new Int32Array(256);
  private readonly rules: MergeRules;
  private readonly specialTokens: ReadonlyMap<string, number>;
  private readonly specialRegex: RegExp | null;
  private readonly pretokenizer = gpt2PretokenizeRegex();
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  /** Piece → its ids (a bare number when the piece is one token, the common case in prose). */
  private readonly cache = new Map<string, number | number[]>();
  private scratchBytes = new Uint8Array(256);
  private scratchIds = new Int32Array(256);

  constructor(spec: BpeSpec) {
    const { bytes, offsets, used } = 'offsets' in spec.tokens ? { ...spec.tokens, used: null } : packTokens(spec.tokens);
    this.vocabSize = offsets.length - 1;
    this.eosTokenId = spec.eosTokenId;
    this.specialTokens = spec.specialTokens;
    this.bytes = bytes;
    this.offsets = offsets;
    this.used = used ?? new Uint8Array(this.vocabSize).fill(1);
    const specialIds = new Set(spec.specialTokens.values());
    this.byteIds.fill(-1);
    for (let id = 0; id < this.vocabSize; id++) {
      const start = offsets[id];
      if (this.used[id] && offsets[id + 1] - start === 1 && !specialIds.has(id) && this.byteIds[bytes[start]] === -1) {
        this.byteIds[bytes[start]] = id;
      }
    }
    const missing = this.byteIds.indexOf(-1);
    if (missing >= 0) {
      throw new Error(
        `byte-level BPE vocabulary has no token for byte 0x${missing.toString(16).padStart(2, '0')}`,
      );
    }

    if (spec.merges instanceof MergeRules) {
      this.rules = spec.merges;
    } else {
      this.rules = new MergeRules(spec.merges.length);
      for (const [left, right, merged] of spec.merges) this.rules.add(left, right, merged);
    }

    const specials = [...spec.specialTokens.keys()].sort((a, b) => b.length - a.length);
    this.specialRegex = specials.length
      ? new RegExp(specials.map((s) => s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')).join('|'), 'g')
      : null;
  }

  encode(text: string, options?: EncodeOptions): number[] {
    const out: number[] = [];
    const special = this.specialRegex;
    if (!options?.allowSpecial || !special) {
      this.encodeOrdinary(text, out);
      return out;
    }
    special.lastIndex = 0;
    let start = 0;
    for (let m = special.exec(text); m !== null; m = special.exec(text)) {
      if (m.index > start) this.encodeOrdinary(text.slice(start, m.index), out);
      out.push(this.specialTokens.get(m[0])!);
      start = m.index + m[0].length;
    }
    if (start < text.length) this.encodeOrdinary(start === 0 ? text : text.slice(start), out);
    return out;
  }

  decode(ids: readonly number[]): string {
    const { offsets, bytes } = this;
    let length = 0;
    for (let i = 0; i < ids.length; i++) {
      this.check(ids[i]);
      length += offsets[ids[i] + 1] - offsets[ids[i]];
    }
    const buffer = new Uint8Array(length);
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const start = offsets[ids[i]];
      const end = offsets[ids[i] + 1];
      buffer.set(bytes.subarray(start, end), at);
      at += end - start;
    }
    return this.decoder.decode(buffer);
  }

  tokenBytes(id: number): Uint8Array {
    this.check(id);
    return this.bytes.slice(this.offsets[id], this.offsets[id + 1]);
  }

  /** Drops the per-piece cache (memory back; encoding results never depend on it). */
  clearCache(): void {
    this.cache.clear();
  }

  private check(id: number): void {
    if (!(this.used[id] === 1 && Number.isInteger(id))) {
      throw new RangeError(`token id ${id} is not in the vocabulary (ids 0..${this.vocabSize - 1})`);
    }
  }

  private encodeOrdinary(text: string, out: number[]): void {
    const re = this.pretokenizer;
    const cache = this.cache;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const piece = m[0];
      const known = cache.get(piece);
      if (known !== undefined) {
        if (typeof known === 'number') out.push(known);
        else for (let i = 0; i < known.length; i++) out.push(known[i]);
        continue;
      }
      const n = this.mergePiece(piece);
      const ids = this.scratchIds;
      if (piece.length <= MAX_CACHED_PIECE) {
        if (cache.size >= MAX_CACHE_ENTRIES) cache.clear();
        cache.set(piece, n === 1 ? ids[0] : Array.from(ids.subarray(0, n)));
      }
      for (let i = 0; i < n; i++) out.push(ids[i]);
    }
  }

  /** BPE of one piece into scratchIds; returns the token count. */
  private mergePiece(piece: string): number {
    const worst = piece.length * 3;
    if (this.scratchBytes.length < worst) {
      this.scratchBytes = new Uint8Array(worst * 2);
      this.scratchIds = new Int32Array(worst * 2);
    }
    const bytes = this.scratchBytes;
    const ids = this.scratchIds;
    const n = utf8Encode(piece, 0, piece.length, bytes);
    for (let i = 0; i < n; i++) ids[i] = this.byteIds[bytes[i]];
    return this.rules.apply(ids, n);
  }
}
