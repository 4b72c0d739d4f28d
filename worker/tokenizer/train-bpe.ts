/**
 * Learns a byte-level BPE vocabulary (GPT-2's pre-tokenizer and byte alphabet) from text.
 *
 * The classic algorithm over *unique* pre-tokenized words weighted by their frequency: count every
 * adjacent pair once, then repeatedly take the most frequent pair, rewrite only the words that contain it
 * and update the counts by the difference. A lazy max-heap finds the best pair (stale entries are skipped
 * when popped), and an index pair → words finds the words to rewrite, so one merge costs about the number
 * of words it touches. Written here because no npm package trains byte-level BPE in plain JavaScript
 * (Hugging Face's trainer is native code); the output is GPT-2's file format, which `loadTokenizer` reads.
 *
 * Ties between equally frequent pairs go to the smaller (left id, right id): the result is a function of
 * the word counts alone, not of the order the text came in.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bytesToByteLevel } from './bytes.js';
import { gpt2PretokenizeRegex } from './pretokenize.js';

export const ENDOFTEXT = '<|endoftext|>';
/** Pair keys pack two ids into one number (left * 2^16 + right). */
const MAX_VOCAB = 1 << 16;
const ID_BITS = 2 ** 16;

export interface BpeTrainingOptions {
  /** Size of the vocabulary, the 256 bytes and the end-of-text token included (e.g. 8192). */
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged (default 2); the vocabulary may then stay smaller. */
  minFrequency?: number;
  /** Called every `progressEvery` merges (default 500). */
  onProgress?: (tokens: number, vocabSize: number) => void;
  progressEvery?: number;
}

export interface TrainedBpe {
  /** vocab.json: byte-level token string → id; ids 0..255 are the bytes, `<|endoftext|>` is the last id. */
  vocab: Record<string, number>;
  /** merges.txt lines (without the `#version` header), highest priority first. */
  merges: string[];
  vocabSize: number;
  eosTokenId: number;
}

/** Adds the pre-tokenized words of `text` to `counts` (word → occurrences). */
export function countWords(text: string, counts: Map<string, number> = new Map()): Map<string, number> {
  const regex = gpt2PretokenizeRegex();
  for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
    const word = m[0];
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

export function trainBpeOnTexts(texts: Iterable<string>, options: BpeTrainingOptions): TrainedBpe {
  const counts = new Map<string, number>();
  for (const text of texts) countWords(text, counts);
  return trainBpe(counts, options);
}

/** A max-heap of (count, pair key): larger count first, smaller key on ties. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    for (let i = this.counts.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.counts.length && this.before(l, best)) best = l;
        if (r < this.counts.length && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

export function trainBpe(wordCounts: ReadonlyMap<string, number>, options: BpeTrainingOptions): TrainedBpe {
  const target = options.vocabSize;
  if (!Number.isInteger(target) || target < 257 || target > MAX_VOCAB) {
    throw new RangeError(`vocabSize must be an integer in 257..${MAX_VOCAB} (256 bytes + <|endoftext|> at least), got ${target}`);
  }
  const minFrequency = options.minFrequency ?? 2;
  const progressEvery = options.progressEvery ?? 500;

  // Token bytes by id: ids 0..255 are the bytes themselves.
  const tokenBytes: Uint8Array[] = Array.from({ length: 256 }, (_, b) => Uint8Array.of(b));
  const idOfBytes = new Map<string, number>(tokenBytes.map((t, id) => [bytesToByteLevel(t), id]));

  const encoder = new TextEncoder();
  const words: Int32Array[] = [];
  const lengths: number[] = [];
  const freqs: number[] = [];
  for (const [word, count] of wordCounts) {
    const bytes = encoder.encode(word);
    if (bytes.length < 2 || count <= 0) continue; // a single byte has no pair to merge
    words.push(Int32Array.from(bytes));
    lengths.push(bytes.length);
    freqs.push(count);
  }

  const pairCounts = new Map<number, number>();
  const wordsWithPair = new Map<number, number[]>();
  for (let w = 0; w < words.length; w++) {
    const s = words[w];
    for (let i = 0; i + 1 < lengths[w]; i++) {
      const key = s[i] * ID_BITS + s[i + 1];
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + freqs[w]);
      const list = wordsWithPair.get(key);
      if (list === undefined) wordsWithPair.set(key, [w]);
      else if (list[list.length - 1] !== w) list.push(w);
    }
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);

  const merges: Array<[number, number]> = [];
  // A word listed twice for one pair must be rewritten once: the merge number it was last rewritten at.
  const rewrittenAt = new Int32Array(words.length).fill(-1);
  const newTokens = target - 257;
  let created = 0;
  while (created < newTokens && heap.size > 0) {
    const { count, key } = heap.pop();
    if (pairCounts.get(key) !== count) continue; // stale entry
    if (count < minFrequency) break;
    const left = Math.floor(key / ID_BITS);
    const right = key % ID_BITS;
    const bytes = concat(tokenBytes[left], tokenBytes[right]);
    const name = bytesToByteLevel(bytes);
    // The same bytes can come from two different splits; they are then one token with two merge rules.
    let merged = idOfBytes.get(name);
    if (merged === undefined) {
      merged = tokenBytes.length;
      tokenBytes.push(bytes);
      idOfBytes.set(name, merged);
      created++;
    }
    const mergeIndex = merges.length;
    merges.push([left, right]);

    const delta = new Map<number, number>();
    const change = (k: number, by: number) => delta.set(k, (delta.get(k) ?? 0) + by);
    for (const w of wordsWithPair.get(key) ?? []) {
      if (rewrittenAt[w] === mergeIndex) continue;
      rewrittenAt[w] = mergeIndex;
      const s = words[w];
      const n = lengths[w];
      let found = false;
      for (let i = 0; i + 1 < n; i++) if (s[i] === left && s[i + 1] === right) found = true;
      if (!found) continue; // the word lost this pair to an earlier merge
      const f = freqs[w];
      for (let i = 0; i + 1 < n; i++) change(s[i] * ID_BITS + s[i + 1], -f);
      let out = 0;
      for (let i = 0; i < n; ) {
        if (i + 1 < n && s[i] === left && s[i + 1] === right) {
          s[out++] = merged;
          i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      lengths[w] = out;
      for (let i = 0; i + 1 < out; i++) {
        const k = s[i] * ID_BITS + s[i + 1];
        change(k, f);
        if (s[i] === merged || s[i + 1] === merged) {
          const list = wordsWithPair.get(k);
          if (list === undefined) wordsWithPair.set(k, [w]);
          else if (list[list.length - 1] !== w) list.push(w);
        }
      }
    }
    wordsWithPair.delete(key);
    for (const [k, by] of delta) {
      if (by === 0) continue;
      const now = (pairCounts.get(k) ?? 0) + by;
      if (now <= 0) pairCounts.delete(k);
      else {
        pairCounts.set(k, now);
        heap.push(now, k);
      }
    }
    if (options.onProgress && merges.length % progressEvery === 0) options.onProgress(tokenBytes.length + 1, target);
  }

  const names = tokenBytes.map(bytesToByteLevel);
  const vocab = Object.create(null) as Record<string, number>;
  names.forEach((n, id) => (vocab[n] = id));
  const eosTokenId = names.length;
  vocab[ENDOFTEXT] = eosTokenId;
  options.onProgress?.(eosTokenId + 1, target);
  return {
    vocab,
    merges: merges.map(([l, r]) => `${names[l]} ${names[r]}`),
    vocabSize: eosTokenId + 1,
    eosTokenId,
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Writes vocab.json and merges.txt (with Hugging Face's `#version: 0.2` header) into `dir`. Each file is
 * written under a temporary name and renamed, so a killed process never leaves half a vocabulary.
 */
export async function writeBpeFiles(dir: string, trained: Pick<TrainedBpe, 'vocab' | 'merges'>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const write = async (name: string, text: string) => {
    const tmp = path.join(dir, `.${name}.tmp`);
    await writeFile(tmp, text);
    await rename(tmp, path.join(dir, name));
  };
  await write('merges.txt', ['#version: 0.2', ...trained.merges].join('\n') + '\n');
  await write('vocab.json', JSON.stringify(trained.vocab));
}
