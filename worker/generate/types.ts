/** Generation options with the names and meanings of Hugging Face `generate` (camelCase here, snake_case on the CLI). */
export interface GenerationOptions {
  /** Prompt + new tokens. Ignored when `maxNewTokens` is set. Default 20, as in Hugging Face. */
  maxLength?: number;
  maxNewTokens?: number;
  /** End-of-text and stop strings are ignored before this many new tokens. */
  minNewTokens?: number;
  numReturnSequences?: number;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  noRepeatNgramSize?: number;
  /** Generation of a sequence ends when its new text contains one of these; the text is cut before it. */
  stop?: string[];
  /** Token that ends a sequence; defaults to the model's/tokenizer's `<|endoftext|>`; null disables. */
  eosTokenId?: number | null;
  seed?: number;
  signal?: AbortSignal;
}

export type FinishReason = 'length' | 'eos' | 'stop' | 'aborted';

export interface GeneratedSequence {
  /** New token ids only (the prompt is not repeated). */
  ids: number[];
  /** Decoded new text (cut before a stop string). */
  text: string;
  finishReason: FinishReason;
}

export interface GenerationTimings {
  prefillMs: number;
  decodeMs: number;
  /** New tokens per second of decode time, summed over sequences. */
  decodeTokensPerS: number;
  totalMs: number;
}

export interface GenerationResult {
  sequences: GeneratedSequence[];
  /** Prompt tokens actually used (after truncation to the context window). */
  promptTokens: number;
  /** Prompt tokens dropped from the start because the prompt + new tokens did not fit the context. */
  truncatedPromptTokens: number;
  timings: GenerationTimings;
}

/** Streamed once per new token per sequence; `textDelta` never ends inside a UTF-8 character. */
export interface TokenEvent {
  sequence: number;
  tokenId: number;
  textDelta: string;
  text: string;
}
