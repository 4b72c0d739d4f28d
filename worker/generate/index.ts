export { generate, fitPromptToContext, promptScreen } from './generate.js';
export { resolveOptions, resolveMaxNewTokens, GenerationOptionsError, DEFAULTS, type ResolvedOptions } from './options.js';
export {
  buildLogitsProcessors,
  RepetitionPenaltyProcessor,
  NoRepeatNgramProcessor,
  MinNewTokensProcessor,
  TemperatureProcessor,
  TopKProcessor,
  TopPProcessor,
  type LogitsProcessor,
  type SequenceState,
} from './processors.js';
export { Xoshiro128, argmax, sampleFromScores } from './sampling.js';
export type * from './types.js';
