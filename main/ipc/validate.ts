/**
 * Checks on values that arrive from the renderer. The renderer is treated as untrusted: in browser mode any
 * page holding the token can send anything, so every argument is checked for type, size and range here,
 * before it reaches the store or the engine.
 */
import type { CompletionRequest, DecodingSettings } from './contract.js';
import { DECODING_RULES, SETTINGS_RULES, type SettingsPatch } from '../store/index.js';
import { ApiError } from './errors.js';

export const LIMITS = {
  /** Ids are short, machine-made strings (the store's document ids, the renderer's request ids). */
  idChars: 128,
  titleChars: 1_000,
  queryChars: 1_000,
  /** About 2,500 pages of prose: generous for one document, small enough to keep SQLite and IPC cheap. */
  bodyChars: 5_000_000,
  /**
   * The engine sees only the end of the text before the cursor. GPT-2's context is 1024 tokens, about
   * 4 characters each in English, so 8,000 characters always fills it while keeping a pasted book from
   * being tokenized on every keystroke.
   */
  prefixChars: 8_000,
} as const;

export type ArgumentCheck<T> = (value: unknown, name: string) => T;

function invalid(name: string, expected: string, value: unknown): ApiError {
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
  return new ApiError('INVALID_INPUT', `${name} must be ${expected}, got ${got}`);
}

export function string(maxChars: number): ArgumentCheck<string> {
  return (value, name) => {
    if (typeof value !== 'string') throw invalid(name, 'a string', value);
    if (value.length > maxChars) {
      throw new ApiError('TOO_LARGE', `${name} is too long: ${value.length} characters, the limit is ${maxChars}`);
    }
    return value;
  };
}

const ID_PATTERN = /^[A-Za-z0-9_.:-]+$/;

export const id: ArgumentCheck<string> = (value, name) => {
  if (typeof value !== 'string') throw invalid(name, 'an id string', value);
  if (value.length > LIMITS.idChars || !ID_PATTERN.test(value)) {
    throw new ApiError(
      'INVALID_INPUT',
      `${name} must be an id of 1 to ${LIMITS.idChars} letters, digits, "_", "-", ".", ":"`,
    );
  }
  return value;
};

export function integer(min: number, max: number): ArgumentCheck<number> {
  return (value, name) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid(name, 'an integer', value);
    if (value < min || value > max) {
      throw new ApiError('INVALID_INPUT', `${name} must be between ${min} and ${max}, got ${value}`);
    }
    return value;
  };
}

export const boolean: ArgumentCheck<boolean> = (value, name) => {
  if (typeof value !== 'boolean') throw invalid(name, 'true or false', value);
  return value;
};

export function optional<T>(check: ArgumentCheck<T>): ArgumentCheck<T | undefined> {
  return (value, name) => (value === undefined ? undefined : check(value, name));
}

function plainObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(name, 'an object', value);
  return value as Record<string, unknown>;
}

/**
 * A partial set of decoding settings, checked with the store's own rules so that a completion can never
 * override a setting with a value the settings page would refuse.
 */
export const decodingPatch: ArgumentCheck<Partial<DecodingSettings>> = (value, name) => {
  const input = plainObject(value, name);
  const out: Record<string, unknown> = {};
  for (const [key, fieldValue] of Object.entries(input)) {
    if (fieldValue === undefined) continue;
    // hasOwn: a key such as "constructor" must not find a function on Object.prototype.
    if (!Object.hasOwn(DECODING_RULES, key)) throw new ApiError('INVALID_INPUT', `${name} has an unknown field "${key.slice(0, 64)}"`);
    const problem = DECODING_RULES[key as keyof DecodingSettings](fieldValue);
    if (problem !== null) throw new ApiError('INVALID_INPUT', `${name}.${key} ${problem}`);
    out[key] = fieldValue;
  }
  return out as Partial<DecodingSettings>;
};

/** A settings patch, every present field checked with the store's rules (which apply them again on write). */
export const settingsPatch: ArgumentCheck<SettingsPatch> = (value, name) => {
  const input = plainObject(value, name);
  const out: Record<string, unknown> = {};
  for (const [key, fieldValue] of Object.entries(input)) {
    if (fieldValue === undefined) continue;
    if (key === 'decoding') {
      out.decoding = decodingPatch(fieldValue, `${name}.decoding`);
      continue;
    }
    if (!Object.hasOwn(SETTINGS_RULES, key)) throw new ApiError('INVALID_INPUT', `${name} has an unknown field "${key.slice(0, 64)}"`);
    const problem = SETTINGS_RULES[key as keyof typeof SETTINGS_RULES](fieldValue);
    if (problem !== null) throw new ApiError('INVALID_INPUT', `${name}.${key} ${problem}`);
    out[key] = fieldValue;
  }
  return out as SettingsPatch;
};

/** The last `maxChars` characters, never starting in the middle of a surrogate pair. */
export function tail(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  let start = text.length - maxChars;
  const first = text.charCodeAt(start);
  if (first >= 0xdc00 && first <= 0xdfff) start += 1;
  return text.slice(start);
}

/**
 * Checks a completion request. The prefix may be arbitrarily long (a pasted book); it is cut to its end
 * rather than refused, because the engine only ever looks at the last context-window of it.
 */
export function completionRequest(value: unknown, name = 'request'): CompletionRequest {
  const input = plainObject(value, name);
  for (const key of Object.keys(input)) {
    if (!['requestId', 'documentId', 'prefix', 'numAlternatives', 'decoding', 'stopAtSentenceEnd', 'prefillOnly'].includes(key)) {
      throw new ApiError('INVALID_INPUT', `${name} has an unknown field "${key.slice(0, 64)}"`);
    }
  }
  if (typeof input.prefix !== 'string') throw invalid(`${name}.prefix`, 'a string', input.prefix);
  const request: CompletionRequest = {
    requestId: id(input.requestId, `${name}.requestId`),
    documentId: id(input.documentId, `${name}.documentId`),
    prefix: tail(input.prefix, LIMITS.prefixChars),
  };
  if (input.numAlternatives !== undefined) {
    request.numAlternatives = decodingPatch({ numAlternatives: input.numAlternatives }, name).numAlternatives;
  }
  const decoding = optional(decodingPatch)(input.decoding, `${name}.decoding`);
  if (decoding !== undefined) request.decoding = decoding;
  const stop = optional(boolean)(input.stopAtSentenceEnd, `${name}.stopAtSentenceEnd`);
  if (stop !== undefined) request.stopAtSentenceEnd = stop;
  const prefillOnly = optional(boolean)(input.prefillOnly, `${name}.prefillOnly`);
  if (prefillOnly !== undefined) request.prefillOnly = prefillOnly;
  return request;
}
