// The standard GPT-2 vocabulary, built from js-tiktoken's r50k ranks so that no files are needed.
// tiktoken's rank of a token is its GPT-2 id, and ids 256..50255 were created by merges in id
// order, so GPT-2's merges.txt can be recovered: token t is the merge of the two pieces that BPE
// with the merges of tokens below t leaves of t's bytes (Hugging Face converts tiktoken
// vocabularies the same way).

import gpt2Ranks from 'js-tiktoken/ranks/gpt2';
import { BpeTokenizer, MergeRules, type BpeSpec } from './bpe.js';
import { bytesToByteLevel } from './bytes.js';

const ENDOFTEXT = '<|endoftext|>';

/** Ranks in js-tiktoken's packed form: lines of `<name> <first rank> <base64 token>...`. */
function parseRanks(packed: string): Uint8Array[] {
  const tokens: Uint8Array[] = [];
  for (const line of packed.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const first = Number(fields[1]);
    for (let i = 2; i < fields.length; i++) {
      const raw = atob(fields[i]);
      const bytes = new Uint8Array(raw.length);
      for (let j = 0; j < raw.length; j++) bytes[j] = raw.charCodeAt(j);
      tokens[first + i - 2] = bytes;
    }
  }
  for (let id = 0; id < tokens.length; id++) {
    if (!tokens[id]) throw new Error(`js-tiktoken's GPT-2 ranks have no token ${id}`);
  }
  return tokens;
}

/** GPT-2's merges, as [left id, right id, merged id] in priority order. */
function recoverMerges(tokens: readonly Uint8Array[]): Array<[number, number, number]> {
  const byteIds = new Int32Array(256).fill(-1);
  tokens.forEach((t, id) => {
    if (t.length === 1) byteIds[t[0]] = id;
  });
  const rules = new MergeRules(tokens.length);
  const merges: Array<[number, number, number]> = [];
  const ids = new Int32Array(tokens.reduce((most, t) => Math.max(most, t.length), 0));
  for (let id = 0; id < tokens.length; id++) {
    const t = tokens[id];
    if (t.length === 1) continue;
    for (let i = 0; i < t.length; i++) ids[i] = byteIds[t[i]];
    if (rules.apply(ids, t.length) !== 2) {
      throw new Error(`GPT-2 token ${id} is not the merge of two earlier tokens`);
    }
    rules.add(ids[0], ids[1], id);
    merges.push([ids[0], ids[1], id]);
  }
  return merges;
}

function gpt2Spec(): BpeSpec {
  const tokens = parseRanks(gpt2Ranks.bpe_ranks);
  const eos = gpt2Ranks.special_tokens[ENDOFTEXT];
  if (eos !== tokens.length) throw new Error(`expected ${ENDOFTEXT} right after the ranks, got id ${eos}`);
  return {
    tokens: [...tokens, new TextEncoder().encode(ENDOFTEXT)],
    merges: recoverMerges(tokens),
    specialTokens: new Map([[ENDOFTEXT, eos]]),
    eosTokenId: eos,
  };
}

let cached: { tokenizer: BpeTokenizer; spec: BpeSpec } | null = null;

function load(): { tokenizer: BpeTokenizer; spec: BpeSpec } {
  if (!cached) {
    const spec = gpt2Spec();
    cached = { tokenizer: new BpeTokenizer(spec), spec };
  }
  return cached;
}

/** The shared GPT-2 tokenizer (built on first use, about 0.1 s). */
export function gpt2Tokenizer(): BpeTokenizer {
  return load().tokenizer;
}

/**
 * GPT-2's vocab.json and merges.txt contents (merges without the `#version` header), e.g. to save
 * next to a fine-tuned checkpoint so that other tools can read it.
 */
export function gpt2VocabMerges(): { vocab: Record<string, number>; merges: string[] } {
  const { spec } = load();
  const names = spec.tokens.map((t, id) =>
    id === spec.eosTokenId ? ENDOFTEXT : bytesToByteLevel(t!),
  );
  const vocab = Object.create(null) as Record<string, number>;
  names.forEach((name, id) => (vocab[name] = id));
  const merges = spec.merges.map(([left, right]) => `${names[left]} ${names[right]}`);
  return { vocab, merges };
}
