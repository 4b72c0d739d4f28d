import type { Database } from 'better-sqlite3';
import type { DecodingSettings, Settings } from '../ipc/contract.js';
import { StoreError, describeValue } from './errors.js';

export type SettingsPatch = Partial<Omit<Settings, 'decoding'>> & { decoding?: Partial<DecodingSettings> };

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  decoding: Object.freeze({
    temperature: 0.8,
    topK: 40,
    topP: 0.95,
    repetitionPenalty: 1.2,
    noRepeatNgramSize: 3,
    maxNewTokens: 12,
    numAlternatives: 3,
    doSample: true,
  }),
  suggestionDelayMs: 400,
  stopAtSentenceEnd: true,
  suggestionsEnabled: true,
  checkForUpdates: false,
  toneLabels: Object.freeze(['formal', 'casual', 'neutral']) as unknown as string[],
  toneTemplate: 'Text: {text}\nTone:',
  toneCalibrate: true,
  precision: 'exact',
});

const MAX_TONE_LABELS = 10;
const MAX_TONE_LABEL_CHARS = 40;
const MAX_TONE_TEMPLATE_CHARS = 2000;

/** Checks one value; returns what is wrong with it, or null. */
type Rule = (value: unknown) => string | null;

const numberIn =
  (min: number, max: number): Rule =>
  (value) =>
    typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max
      ? null
      : `must be a number from ${min} to ${max}`;

const integerIn =
  (min: number, max: number): Rule =>
  (value) =>
    Number.isInteger(value) && (value as number) >= min && (value as number) <= max
      ? null
      : `must be a whole number from ${min} to ${max}`;

const isBoolean: Rule = (value) => (typeof value === 'boolean' ? null : 'must be true or false');

/** The accepted ranges. Zero turns top-k and the n-gram ban off, as in the usual generation APIs. */
export const DECODING_RULES: { readonly [K in keyof DecodingSettings]: Rule } = {
  temperature: numberIn(0.01, 5),
  topK: integerIn(0, 50_257),
  topP: (value) =>
    typeof value === 'number' && value > 0 && value <= 1 ? null : 'must be a number above 0 and at most 1',
  repetitionPenalty: numberIn(1, 5),
  noRepeatNgramSize: integerIn(0, 10),
  maxNewTokens: integerIn(1, 256),
  numAlternatives: integerIn(1, 10),
  doSample: isBoolean,
};

export const SETTINGS_RULES: { readonly [K in Exclude<keyof Settings, 'decoding'>]: Rule } = {
  suggestionDelayMs: integerIn(0, 10_000),
  stopAtSentenceEnd: isBoolean,
  suggestionsEnabled: isBoolean,
  checkForUpdates: isBoolean,
  toneLabels: (value) => {
    const shape = `must be a list of 2 to ${MAX_TONE_LABELS} different, non-empty labels of at most ${MAX_TONE_LABEL_CHARS} characters`;
    if (!Array.isArray(value) || value.length < 2 || value.length > MAX_TONE_LABELS) return shape;
    if (value.some((label) => typeof label !== 'string' || label.trim() === '' || label.length > MAX_TONE_LABEL_CHARS)) return shape;
    return new Set(value.map((label: string) => label.trim())).size === value.length ? null : shape;
  },
  toneTemplate: (value) =>
    typeof value === 'string' && value.length <= MAX_TONE_TEMPLATE_CHARS && value.includes('{text}')
      ? null
      : `must be a prompt of at most ${MAX_TONE_TEMPLATE_CHARS} characters with {text} where the text goes`,
  toneCalibrate: isBoolean,
  precision: (value) => (value === 'exact' || value === 'fast' ? null : 'must be "exact" or "fast"'),
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every problem in a patch, as "path must be ... (got x)" lines. `undefined` values count as absent. */
export function settingsPatchProblems(patch: unknown): string[] {
  if (!isPlainObject(patch)) return [`the settings patch must be an object (got ${describeValue(patch)})`];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (key === 'decoding') {
      if (!isPlainObject(value)) {
        problems.push(`decoding must be an object (got ${describeValue(value)})`);
        continue;
      }
      for (const [field, fieldValue] of Object.entries(value)) {
        if (fieldValue === undefined) continue;
        const rule = Object.hasOwn(DECODING_RULES, field) ? DECODING_RULES[field as keyof DecodingSettings] : undefined;
        const problem = rule ? rule(fieldValue) : 'is not a setting';
        if (problem) problems.push(`decoding.${field} ${problem} (got ${describeValue(fieldValue)})`);
      }
      continue;
    }
    const rule = Object.hasOwn(SETTINGS_RULES, key) ? SETTINGS_RULES[key as keyof typeof SETTINGS_RULES] : undefined;
    const problem = rule ? rule(value) : 'is not a setting';
    if (problem) problems.push(`${key} ${problem} (got ${describeValue(value)})`);
  }
  return problems;
}

function withoutUndefined(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

/**
 * Settings as a key/value table of JSON values, one row per top-level key. Only what the user changed is
 * stored, so a later version's better defaults reach every key the user never touched.
 */
export function createSettingsStore(db: Database) {
  const selectAll = db.prepare<[], { key: string; value: string }>('SELECT key, value FROM settings');
  const upsert = db.prepare<[string, string]>(
    'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  );

  /** Stored values that still pass today's rules; anything else (hand-edited, older ranges) is ignored. */
  function storedOverrides(): SettingsPatch {
    const overrides: Record<string, unknown> = {};
    for (const { key, value } of selectAll.all()) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        continue;
      }
      if (key === 'decoding') {
        if (!isPlainObject(parsed)) continue;
        overrides.decoding = Object.fromEntries(
          Object.entries(parsed).filter(([field, fieldValue]) => {
            const rule = Object.hasOwn(DECODING_RULES, field) ? DECODING_RULES[field as keyof DecodingSettings] : undefined;
            return rule !== undefined && rule(fieldValue) === null;
          }),
        );
      } else if (Object.hasOwn(SETTINGS_RULES, key) && SETTINGS_RULES[key as keyof typeof SETTINGS_RULES](parsed) === null) {
        overrides[key] = parsed;
      }
    }
    return overrides as SettingsPatch;
  }

  function get(): Settings {
    const { decoding, ...rest } = storedOverrides();
    return { ...DEFAULT_SETTINGS, ...rest, decoding: { ...DEFAULT_SETTINGS.decoding, ...decoding } };
  }

  const writePatch = db.transaction((patch: SettingsPatch) => {
    const { decoding, ...rest } = patch;
    for (const [key, value] of Object.entries(withoutUndefined(rest))) upsert.run(key, JSON.stringify(value));
    if (decoding !== undefined) {
      const merged = { ...storedOverrides().decoding, ...withoutUndefined(decoding) };
      upsert.run('decoding', JSON.stringify(merged));
    }
  });

  /** Validates the whole patch first (nothing is written if any value is wrong), then merges it in. */
  function update(patch: SettingsPatch): Settings {
    const problems = settingsPatchProblems(patch);
    if (problems.length > 0) throw new StoreError('INVALID_SETTINGS', `Invalid settings: ${problems.join('; ')}.`);
    writePatch.immediate(patch);
    return get();
  }

  return { get, update };
}
