// Vocabularies that a checkpoint brings: GPT-2's vocab.json + merges.txt, or a Hugging Face
// tokenizer.json holding a byte-level BPE model.

import type { Tokenizer } from './types.js';
import { BpeTokenizer } from './bpe.js';
import { BYTE_TO_CHAR, byteLevelToBytes } from './bytes.js';

const ENDOFTEXT = '<|endoftext|>';
/** Ids are array indices here, so an absurd id in a file must not allocate gigabytes. */
const MAX_TOKEN_ID = 1 << 22;

/** A vocabulary or merges file that cannot be used; the message names the file and the problem. */
export class TokenizerFormatError extends Error {
  override name = 'TokenizerFormatError';
}

export interface VocabSource {
  /** How error messages name the vocabulary and the merges (file names when loaded from disk). */
  vocabName?: string;
  mergesName?: string;
  /** Added tokens (tokenizer.json): their content is raw text, not byte-level characters. */
  addedTokens?: ReadonlyArray<{ id: number; content: string; special: boolean }>;
}

type Merge = string | readonly [string, string];

/**
 * A byte-level BPE tokenizer from vocab.json's object and merges.txt's lines (a `#version` line and
 * blank lines are skipped, so the file's lines can be passed as they are). `<|endoftext|>`, when
 * the vocabulary has it, is the special end-of-text token.
 */
export function tokenizerFromVocabMerges(
  vocab: Record<string, number>,
  merges: readonly Merge[],
  source: VocabSource = {},
): Tokenizer {
  const vocabName = source.vocabName ?? 'vocab';
  const mergesName = source.mergesName ?? 'merges';
  const fail = (message: string): never => {
    throw new TokenizerFormatError(message);
  };

  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) {
    fail(`${vocabName} must be an object mapping token strings to ids`);
  }
  const added = new Map<number, { content: string; special: boolean }>();
  for (const t of source.addedTokens ?? []) added.set(t.id, t);

  const tokens: Array<Uint8Array | null> = [];
  const names = new Map<number, string>();
  const vocabMap = new Map<string, number>();
  for (const [name, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID) {
      fail(`${vocabName}: token ${JSON.stringify(name)} has id ${JSON.stringify(id)}; ids must be integers 0..${MAX_TOKEN_ID}`);
    }
    const other = names.get(id);
    if (other !== undefined) {
      fail(`${vocabName}: tokens ${JSON.stringify(other)} and ${JSON.stringify(name)} both have id ${id}`);
    }
    names.set(id, name);
    vocabMap.set(name, id);
    if (added.has(id)) continue;
    const bytes = byteLevelToBytes(name);
    if (bytes === null) {
      fail(
        `${vocabName}: token ${JSON.stringify(name)} (id ${id}) has a character that is not one of ` +
          `GPT-2's byte-level symbols; only byte-level BPE vocabularies are supported`,
      );
    }
    tokens[id] = bytes;
  }
  const encoder = new TextEncoder();
  const specialTokens = new Map<string, number>();
  for (const [id, t] of added) {
    // Hugging Face matches added tokens in all text before BPE; only special ones (matched here
    // with allowSpecial) are implemented, so a vocabulary with others would encode differently.
    if (!t.special) fail(`added token ${JSON.stringify(t.content)} is not special; only special added tokens are supported`);
    if (!Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID) fail(`added token ${JSON.stringify(t.content)} has id ${id}`);
    tokens[id] = encoder.encode(t.content);
    specialTokens.set(t.content, id);
  }
  const eos = vocabMap.get(ENDOFTEXT) ?? specialTokens.get(ENDOFTEXT) ?? null;
  if (eos !== null) {
    tokens[eos] = encoder.encode(ENDOFTEXT);
    specialTokens.set(ENDOFTEXT, eos);
  }
  for (let i = 0; i < tokens.length; i++) tokens[i] ??= null;

  for (let byte = 0; byte < 256; byte++) {
    if (!vocabMap.has(BYTE_TO_CHAR[byte])) {
      fail(
        `${vocabName} has no token ${JSON.stringify(BYTE_TO_CHAR[byte])} for byte 0x${byte.toString(16).padStart(2, '0')}; ` +
          `a byte-level BPE vocabulary needs all 256 bytes`,
      );
    }
  }

  if (!Array.isArray(merges)) fail(`${mergesName} must be a list of merges`);
  const mergeIds: Array<[number, number, number]> = [];
  merges.forEach((merge, index) => {
    const where = `${mergesName} line ${index + 1}`;
    let pair: readonly string[];
    if (typeof merge === 'string') {
      if (merge.trim() === '' || (index === 0 && merge.startsWith('#version'))) return;
      pair = merge.split(' ');
    } else if (Array.isArray(merge)) {
      pair = merge;
    } else {
      return fail(`${where}: expected a merge, got ${JSON.stringify(merge)}`);
    }
    if (pair.length !== 2 || !pair[0] || !pair[1] || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      fail(`${where}: expected two tokens separated by one space, got ${JSON.stringify(merge)}`);
    }
    const [left, right] = pair;
    const ids = [left, right, left + right].map((name) => {
      const id = vocabMap.get(name);
      if (id === undefined || added.has(id)) {
        return fail(`${where}: ${JSON.stringify(name)} (from merge ${JSON.stringify(merge)}) is not in ${vocabName}`);
      }
      return id;
    });
    mergeIds.push([ids[0], ids[1], ids[2]]);
  });

  return new BpeTokenizer({ tokens, merges: mergeIds, specialTokens, eosTokenId: eos });
}

/**
 * A tokenizer from a parsed Hugging Face tokenizer.json. Only the byte-level BPE that GPT-2 uses
 * is implemented, so other models or options are refused rather than tokenized differently.
 */
export function tokenizerFromHfJson(json: unknown, name = 'tokenizer.json'): Tokenizer {
  const fail = (message: string): never => {
    throw new TokenizerFormatError(`${name}: ${message}`);
  };
  const root = asObject(json) ?? fail('expected a JSON object');
  const model = asObject(root.model) ?? fail('has no "model" object');
  if (model.type !== undefined && model.type !== 'BPE') fail(`model type ${JSON.stringify(model.type)} is not supported (only BPE)`);
  const vocab = asObject(model.vocab) ?? fail('model.vocab must be an object of token → id');
  if (!Array.isArray(model.merges)) fail('model.merges must be an array');
  for (const option of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
    if (model[option]) fail(`model.${option} ${JSON.stringify(model[option])} is not supported`);
  }
  if (model.ignore_merges === true) fail('model.ignore_merges is not supported');
  if (root.normalizer != null) fail('a normalizer is not supported (GPT-2 has none)');
  checkPreTokenizer(root.pre_tokenizer, fail);

  const addedTokens: Array<{ id: number; content: string; special: boolean }> = [];
  if (root.added_tokens !== undefined && !Array.isArray(root.added_tokens)) fail('added_tokens must be an array');
  for (const entry of (root.added_tokens as unknown[] | undefined) ?? []) {
    const t = asObject(entry);
    if (!t || !Number.isInteger(t.id) || typeof t.content !== 'string') {
      fail(`added_tokens entry ${JSON.stringify(entry)} needs an integer "id" and a string "content"`);
    }
    addedTokens.push({ id: t!.id as number, content: t!.content as string, special: t!.special === true });
  }
  return tokenizerFromVocabMerges(vocab as Record<string, number>, model.merges as Merge[], {
    vocabName: `${name} model.vocab`,
    mergesName: `${name} model.merges`,
    addedTokens,
  });
}

function checkPreTokenizer(pre: unknown, fail: (message: string) => never): void {
  const node = asObject(pre);
  const steps = node?.type === 'Sequence' && Array.isArray(node.pretokenizers) ? node.pretokenizers : [pre];
  const byteLevel = steps.map(asObject).find((s) => s?.type === 'ByteLevel');
  if (!byteLevel || steps.length !== 1) {
    fail(`pre_tokenizer ${JSON.stringify(pre)} is not supported (only GPT-2's ByteLevel)`);
  }
  if (byteLevel!.add_prefix_space === true) fail('ByteLevel add_prefix_space is not supported (GPT-2 uses false)');
  if (byteLevel!.use_regex === false) fail('ByteLevel use_regex false is not supported');
}

function asObject(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}
