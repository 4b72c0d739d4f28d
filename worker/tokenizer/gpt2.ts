// The standard GPT-2 vocabulary, built from js-tiktoken's r50k ranks so that no files are needed.
// tiktoken's rank of a token is its GPT-2 id, and ids 256..50255 were created by merges in id
// order, so GPT-2's merges.txt can be recovered: token t is the merge of the two pieces that BPE
// with the merges of tokens below t leaves of t's bytes (Hugging Face converts tiktoken
// vocabularies the same way).

import gpt2Ranks from 'js-tiktoken/ranks/gpt2';
import { BpeTokenizer, MergeRules, type PackedTokens } from './bpe.js';
import { bytesToByteLevel } from './bytes.js';

const ENDOFTEXT = '<|endoftext|>';

const BASE64 = (() => {
  const values = new Int8Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) values[alphabet.charCodeAt(i)] = i;
  return values;
})();

/**
 * Ranks in js-tiktoken's packed form: lines of `<name> <first rank> <base64 token>...`. Decoded by one scan
 * into one buffer: a string, an array and a Uint8Array per token (50k of each) made the JavaScript heap
 * grow by ~30 MiB that V8 kept for the life of the process.
 */
function parseRanks(packed: string): PackedTokens {
  const decoded = new Uint8Array(Math.ceil((packed.length * 3) / 4));
  const starts: number[] = [];
  const ends: number[] = [];
  let size = 0;
  for (const line of packed.split('\n')) {
    const nameEnd = line.indexOf(' ');
    if (nameEnd < 0) continue;
    const firstEnd = line.indexOf(' ', nameEnd + 1);
    let id = Number(line.slice(nameEnd + 1, firstEnd < 0 ? line.length : firstEnd));
    for (let at = firstEnd < 0 ? line.length : firstEnd + 1; at < line.length; id++) {
      const end = line.indexOf(' ', at) < 0 ? line.length : line.indexOf(' ', at);
      starts[id] = size;
      size = decodeBase64(line, at, end, decoded, size, id);
      ends[id] = size;
      at = end + 1;
    }
  }
  const offsets = new Int32Array(starts.length + 1);
  for (let id = 0; id < starts.length; id++) {
    if (starts[id] === undefined) throw new Error(`js-tiktoken's GPT-2 ranks have no token ${id}`);
    offsets[id + 1] = offsets[id] + ends[id] - starts[id];
  }
  const bytes = new Uint8Array(offsets[starts.length]);
  for (let id = 0; id < starts.length; id++) bytes.set(decoded.subarray(starts[id], ends[id]), offsets[id]);
  return { bytes, offsets };
}

/** Decodes text[from, to) (base64, padded) into out from `at`; returns where the bytes end. */
function decodeBase64(text: string, from: number, to: number, out: Uint8Array, at: number, id: number): number {
  let bits = 0;
  let count = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 61) break; // '=' padding
    const value = c < 128 ? BASE64[c] : -1;
    if (value < 0) throw new Error(`js-tiktoken's GPT-2 ranks: bad base64 in token ${id}`);
    bits = ((bits << 6) | value) & 0xffffff;
    count += 6;
    if (count >= 8) {
      count -= 8;
      out[at++] = (bits >> count) & 0xff;
    }
  }
  return at;
}

/**
 * GPT-2's merges, recovered: the rules (what the tokenizer runs) and the list [left, right, merged, ...] in
 * priority order (what merges.txt holds).
 */
function recoverMerges({ bytes, offsets }: PackedTokens): { rules: MergeRules; merges: Int32Array } {
  const count = offsets.length - 1;
  const byteIds = new Int32Array(256).fill(-1);
  let longest = 0;
  for (let id = 0; id < count; id++) {
    const length = offsets[id + 1] - offsets[id];
    if (length === 1) byteIds[bytes[offsets[id]]] = id;
    longest = Math.max(longest, length);
  }
  const rules = new MergeRules(count);
  const merges = new Int32Array(3 * (count - 256));
  const ids = new Int32Array(longest);
  let at = 0;
  for (let id = 0; id < count; id++) {
    const length = offsets[id + 1] - offsets[id];
    if (length === 1) continue;
    for (let i = 0; i < length; i++) ids[i] = byteIds[bytes[offsets[id] + i]];
    if (rules.apply(ids, length) !== 2) {
      throw new Error(`GPT-2 token ${id} is not the merge of two earlier tokens`);
    }
    rules.add(ids[0], ids[1], id);
    merges.set([ids[0], ids[1], id], at);
    at += 3;
  }
  return { rules, merges: merges.subarray(0, at) };
}

/** The ranks' tokens with <|endoftext|> after them, its id checked against js-tiktoken's. */
function gpt2Tokens(): { ranks: PackedTokens; tokens: PackedTokens; eos: number } {
  const ranks = parseRanks(gpt2Ranks.bpe_ranks);
  const eos = gpt2Ranks.special_tokens[ENDOFTEXT];
  const count = ranks.offsets.length - 1;
  if (eos !== count) throw new Error(`expected ${ENDOFTEXT} right after the ranks, got id ${eos}`);
  const special = new TextEncoder().encode(ENDOFTEXT);
  const bytes = new Uint8Array(ranks.bytes.length + special.length);
  bytes.set(ranks.bytes);
  bytes.set(special, ranks.bytes.length);
  const offsets = new Int32Array(count + 2);
  offsets.set(ranks.offsets);
  offsets[count + 1] = bytes.length;
  return { ranks, tokens: { bytes, offsets }, eos };
}

let cached: BpeTokenizer | null = null;

/**
 * The shared GPT-2 tokenizer (built on first use, about 0.1 s), made from packed tables with no object per
 * token or merge: 50k small arrays of each grew the JavaScript heap by ~25 MiB that V8 kept.
 */
export function gpt2Tokenizer(): BpeTokenizer {
  if (!cached) {
    const { ranks, tokens, eos } = gpt2Tokens();
    cached = new BpeTokenizer({
      tokens,
      merges: recoverMerges(ranks).rules,
      specialTokens: new Map([[ENDOFTEXT, eos]]),
      eosTokenId: eos,
    });
  }
  return cached;
}

/**
 * GPT-2's vocab.json and merges.txt contents (merges without the `#version` header), e.g. to save
 * next to a fine-tuned checkpoint so that other tools can read it. Rebuilt on each call (rare) rather than held.
 */
export function gpt2VocabMerges(): { vocab: Record<string, number>; merges: string[] } {
  const { ranks, tokens, eos } = gpt2Tokens();
  const names = Array.from({ length: tokens.offsets.length - 1 }, (_, id) =>
    id === eos ? ENDOFTEXT : bytesToByteLevel(tokens.bytes.subarray(tokens.offsets[id], tokens.offsets[id + 1])),
  );
  const vocab = Object.create(null) as Record<string, number>;
  names.forEach((name, id) => (vocab[name] = id));
  const list = recoverMerges(ranks).merges;
  const merges: string[] = [];
  for (let i = 0; i < list.length; i += 3) merges.push(`${names[list[i]]} ${names[list[i + 1]]}`);
  return { vocab, merges };
}
