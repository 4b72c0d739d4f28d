// The tokenizer's public API: GPT-2's vocabulary by default, a checkpoint's own when it has one.

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Tokenizer } from './types.js';
import { gpt2Tokenizer } from './gpt2.js';
import { TokenizerFormatError, tokenizerFromHfJson, tokenizerFromVocabMerges } from './files.js';

export type { EncodeOptions, Tokenizer } from './types.js';
export { StreamingDecoder } from './stream.js';
export { gpt2Tokenizer, gpt2VocabMerges } from './gpt2.js';
export { TokenizerFormatError, tokenizerFromHfJson, tokenizerFromVocabMerges } from './files.js';
export { pretokenize } from './pretokenize.js';

/**
 * The tokenizer of the checkpoint in `dir`: its tokenizer.json if there is one (as Hugging Face
 * prefers it), else its vocab.json + merges.txt, else GPT-2's.
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new Error(`tokenizer folder ${dir} does not exist or is not a folder`);

  const tokenizerJson = await readIfPresent(path.join(dir, 'tokenizer.json'));
  if (tokenizerJson !== null) {
    return tokenizerFromHfJson(parseJson(tokenizerJson, path.join(dir, 'tokenizer.json')), path.join(dir, 'tokenizer.json'));
  }
  const vocabPath = path.join(dir, 'vocab.json');
  const mergesPath = path.join(dir, 'merges.txt');
  const [vocab, merges] = await Promise.all([readIfPresent(vocabPath), readIfPresent(mergesPath)]);
  if (vocab === null && merges === null) return gpt2Tokenizer();
  if (vocab === null) throw new TokenizerFormatError(`${mergesPath} has no vocab.json next to it`);
  if (merges === null) throw new TokenizerFormatError(`${vocabPath} has no merges.txt next to it`);
  return tokenizerFromVocabMerges(parseJson(vocab, vocabPath) as Record<string, number>, merges.split(/\r?\n/), {
    vocabName: vocabPath,
    mergesName: mergesPath,
  });
}

async function readIfPresent(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new TokenizerFormatError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}
