/** Scoring continuations: log P(continuation | context) per token and in total, batched on one context's cache. */
import type { LanguageModel } from '../model/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { scoreContinuations, type ScoreOptions, type ScoreResult } from './score.js';

export { scoreContinuations, ScoreError, type ContinuationScore, type ScoreOptions, type ScoreResult } from './score.js';

/**
 * Scores text candidates after a text context. Context and candidates are tokenized separately (as
 * evaluation harnesses do), so a candidate's tokens are the same whatever precedes it; put the word's
 * leading space in the candidate (" positive"), where GPT-2's vocabulary has it.
 */
export function scoreTexts(
  model: LanguageModel,
  tokenizer: Tokenizer,
  context: string,
  candidates: readonly string[],
  options: ScoreOptions = {},
): Promise<ScoreResult> {
  return scoreContinuations(model, tokenizer.encode(context), candidates.map((c) => tokenizer.encode(c)), options);
}
