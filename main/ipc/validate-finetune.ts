/** Checks of what the renderer sends for fine-tuning: shapes and ranges, before anything runs. */
import type { FinetuneRequest, FinetuneSettings } from './contract.js';
import { ApiError } from './errors.js';
import { id, integer, LIMITS, optional, string } from './validate.js';

const SETTINGS_KEYS = new Set(['method', 'epochs', 'learningRate', 'maxSteps', 'blockSize', 'loraRank', 'loraAlpha', 'seed']);
const REQUEST_KEYS = new Set(['documentIds', 'files', 'settings', 'name']);
/** One picked file as sent (characters); the service gives the user-facing message for large ones. */
const FILE_CHARS = 60_000_000;

function object(value: unknown, name: string, keys: Set<string>): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ApiError('INVALID_INPUT', `${name} must be an object`);
  const unknown = Object.keys(value).find((k) => !keys.has(k));
  if (unknown !== undefined) throw new ApiError('INVALID_INPUT', `${name} has an unknown field "${unknown.slice(0, 64)}"`);
  return value as Record<string, unknown>;
}

function positiveNumber(max: number) {
  return (value: unknown, name: string): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
      throw new ApiError('INVALID_INPUT', `${name} must be a number above 0 and at most ${max}`);
    }
    return value;
  };
}

export function finetuneSettings(value: unknown, name: string): FinetuneSettings {
  const input = object(value, name, SETTINGS_KEYS);
  if (input.method !== 'lora' && input.method !== 'full') throw new ApiError('INVALID_INPUT', `${name}.method must be "lora" or "full"`);
  const settings: FinetuneSettings = { method: input.method };
  const set = <K extends keyof FinetuneSettings>(key: K, check: (v: unknown, n: string) => FinetuneSettings[K]) => {
    const v = optional(check)(input[key] ?? undefined, `${name}.${key}`);
    if (v !== undefined) settings[key] = v;
  };
  set('epochs', integer(1, 100));
  set('learningRate', positiveNumber(1));
  set('maxSteps', integer(1, 1_000_000));
  set('blockSize', integer(8, 4096));
  set('loraRank', integer(1, 256));
  set('loraAlpha', positiveNumber(4096));
  set('seed', integer(0, 2 ** 31 - 1));
  return settings;
}

export function finetuneRequest(value: unknown, name = 'request'): FinetuneRequest {
  const input = object(value, name, REQUEST_KEYS);
  const request: FinetuneRequest = { settings: finetuneSettings(input.settings, `${name}.settings`) };
  if (input.documentIds != null) {
    if (!Array.isArray(input.documentIds)) throw new ApiError('INVALID_INPUT', `${name}.documentIds must be an array of ids`);
    request.documentIds = input.documentIds.map((v, i) => id(v, `${name}.documentIds[${i}]`));
  }
  if (input.files != null) {
    if (!Array.isArray(input.files)) throw new ApiError('INVALID_INPUT', `${name}.files must be an array of { name, text }`);
    request.files = input.files.map((f: unknown, i) => {
      const file = object(f, `${name}.files[${i}]`, new Set(['name', 'text']));
      return { name: string(LIMITS.titleChars)(file.name, `${name}.files[${i}].name`), text: string(FILE_CHARS)(file.text, `${name}.files[${i}].text`) };
    });
  }
  const runName = optional(string(LIMITS.titleChars))(input.name ?? undefined, `${name}.name`);
  if (runName !== undefined) request.name = runName;
  return request;
}
