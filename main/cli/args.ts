/** Small, strict parsers for CLI option values: a bad value is a usage error naming the option. */
import { PRECISIONS, type Precision } from '../../worker/model/parallel/decode-products.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseIntOption(name: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`--${name} must be an integer, got "${value}"`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}

export function parseFloatOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${value}"`);
  return n;
}

/** "1,2,3" → [1, 2, 3]; spaces allowed; every entry a non-negative integer. */
export function parseIdList(name: string, value: string): number[] {
  const parts = value.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) throw new UsageError(`${name} needs at least one token id`);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new UsageError(`${name}: "${p}" is not a token id`);
    return Number(p);
  });
}

/** `--precision exact|fast` (undefined when not given: the engine's default, INKLING_PRECISION else exact). */
export function parsePrecisionOption(value: string | undefined): Precision | undefined {
  if (value === undefined) return undefined;
  if (!(PRECISIONS as readonly string[]).includes(value)) throw new UsageError(`--precision must be exact or fast, got "${value}"`);
  return value as Precision;
}
