import type { GenerationOptions } from './types.js';

/**
 * Generation options after validation, with Hugging Face's defaults filled in and the length settled.
 * Everything the loop and the logits processors need, so neither has to look at the raw options again.
 */
export interface ResolvedOptions {
  /** New tokens each sequence may generate (≥ 1). */
  maxNewTokens: number;
  minNewTokens: number;
  numReturnSequences: number;
  doSample: boolean;
  temperature: number;
  /** 0 disables. */
  topK: number;
  /** 1 disables. */
  topP: number;
  /** 1 disables. */
  repetitionPenalty: number;
  /** 0 disables. */
  noRepeatNgramSize: number;
  stop: string[];
  eosTokenId: number | null;
  /** Unsigned 32-bit seed of sequence 0; sequence j uses `seed + j`. */
  seed: number;
  signal: AbortSignal | null;
}

/** Hugging Face's `GenerationConfig` defaults (GPT-2 ships no generation config that changes them). */
export const DEFAULTS = {
  maxLength: 20,
  minNewTokens: 0,
  numReturnSequences: 1,
  doSample: false,
  temperature: 1,
  topK: 50,
  topP: 1,
  repetitionPenalty: 1,
  noRepeatNgramSize: 0,
} as const;

export class GenerationOptionsError extends RangeError {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    this.name = 'GenerationOptionsError';
  }
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'maxLength',
  'maxNewTokens',
  'minNewTokens',
  'numReturnSequences',
  'doSample',
  'temperature',
  'topK',
  'topP',
  'repetitionPenalty',
  'noRepeatNgramSize',
  'stop',
  'eosTokenId',
  'seed',
  'signal',
]);

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function integerOption(name: string, value: unknown, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new GenerationOptionsError(name, `must be an integer ≥ ${min}, got ${describe(value)}`);
  }
  return value;
}

function numberOption(
  name: string,
  value: unknown,
  fallback: number,
  valid: (x: number) => boolean,
  requirement: string,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !valid(value)) {
    throw new GenerationOptionsError(name, `must be ${requirement}, got ${describe(value)}`);
  }
  return value;
}

function resolveStop(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new GenerationOptionsError('stop', `must be an array of strings, got ${describe(value)}`);
  for (const s of value) {
    if (typeof s !== 'string' || s.length === 0) {
      throw new GenerationOptionsError('stop', `every stop string must be a non-empty string, got ${describe(s)}`);
    }
  }
  return [...new Set(value as string[])];
}

function resolveSeed(value: unknown): number {
  if (value === undefined) {
    // No seed asked for: a fresh one from the platform's CSPRNG (never Math.random, which is unseedable).
    return globalThis.crypto.getRandomValues(new Uint32Array(1))[0];
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new GenerationOptionsError('seed', `must be an integer, got ${describe(value)}`);
  }
  return value >>> 0;
}

function resolveSignal(value: unknown): AbortSignal | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || typeof (value as AbortSignal).aborted !== 'boolean') {
    throw new GenerationOptionsError('signal', 'must be an AbortSignal');
  }
  return value as AbortSignal;
}

/**
 * The number of new tokens to generate, as Hugging Face settles it: `maxNewTokens` when set, otherwise
 * `maxLength` (default 20) minus the prompt length, which must leave room for at least one token.
 */
export function resolveMaxNewTokens(options: GenerationOptions, promptLength: number): number {
  if (options.maxNewTokens !== undefined) return integerOption('maxNewTokens', options.maxNewTokens, 1, 0);
  const maxLength = integerOption('maxLength', options.maxLength, 1, DEFAULTS.maxLength);
  if (promptLength >= maxLength) {
    throw new GenerationOptionsError(
      'maxLength',
      `the prompt has ${promptLength} tokens but maxLength (prompt + new tokens) is ${maxLength}; ` +
        'raise maxLength or, better, set maxNewTokens',
    );
  }
  return maxLength - promptLength;
}

/**
 * Validates `options` and fills in defaults. `defaultEosTokenId` is the model's or tokenizer's
 * `<|endoftext|>`; `vocabSize` bounds token ids. Throws a `GenerationOptionsError` naming the bad option.
 */
export function resolveOptions(
  options: GenerationOptions,
  promptLength: number,
  defaultEosTokenId: number | null,
  vocabSize: number,
): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new GenerationOptionsError('options', `must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new GenerationOptionsError(key, 'is not a generation option');
  }
  if (options.doSample !== undefined && typeof options.doSample !== 'boolean') {
    throw new GenerationOptionsError('doSample', `must be true or false, got ${describe(options.doSample)}`);
  }
  const doSample = options.doSample ?? DEFAULTS.doSample;
  const numReturnSequences = integerOption('numReturnSequences', options.numReturnSequences, 1, 1);
  if (!doSample && numReturnSequences > 1) {
    // Hugging Face raises here too: greedy decoding would return k copies of the same sequence.
    throw new GenerationOptionsError(
      'numReturnSequences',
      `greedy decoding (doSample false) gives a single sequence, got numReturnSequences ${numReturnSequences}; ` +
        'set doSample true to sample several',
    );
  }
  let eosTokenId = defaultEosTokenId;
  if (options.eosTokenId !== undefined) {
    eosTokenId =
      options.eosTokenId === null ? null : integerOption('eosTokenId', options.eosTokenId, 0, 0);
    if (eosTokenId !== null && eosTokenId >= vocabSize) {
      throw new GenerationOptionsError('eosTokenId', `must be below the vocabulary size ${vocabSize}, got ${eosTokenId}`);
    }
  }
  return {
    maxNewTokens: resolveMaxNewTokens(options, promptLength),
    minNewTokens: integerOption('minNewTokens', options.minNewTokens, 0, DEFAULTS.minNewTokens),
    numReturnSequences,
    doSample,
    temperature: numberOption('temperature', options.temperature, DEFAULTS.temperature, (x) => x > 0, 'a number > 0'),
    topK: integerOption('topK', options.topK, 0, DEFAULTS.topK),
    topP: numberOption('topP', options.topP, DEFAULTS.topP, (x) => x >= 0 && x <= 1, 'a number in [0, 1]'),
    repetitionPenalty: numberOption(
      'repetitionPenalty',
      options.repetitionPenalty,
      DEFAULTS.repetitionPenalty,
      (x) => x > 0,
      'a number > 0',
    ),
    noRepeatNgramSize: integerOption('noRepeatNgramSize', options.noRepeatNgramSize, 0, DEFAULTS.noRepeatNgramSize),
    stop: resolveStop(options.stop),
    eosTokenId,
    seed: resolveSeed(options.seed),
    signal: resolveSignal(options.signal),
  };
}
