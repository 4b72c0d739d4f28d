import assert from 'node:assert/strict';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { DEFAULT_SETTINGS, openStore, StoreError } from '../../main/store/index.js';
import type { SettingsPatch } from '../../main/store/index.js';
import { tempDataDir } from './helpers.js';

test('defaults are the documented values', () => {
  const store = openStore(tempDataDir());
  assert.deepEqual(store.getSettings(), {
    decoding: {
      temperature: 0.8,
      topK: 40,
      topP: 0.95,
      repetitionPenalty: 1.2,
      noRepeatNgramSize: 3,
      maxNewTokens: 12,
      numAlternatives: 3,
      doSample: true,
    },
    suggestionDelayMs: 400,
    stopAtSentenceEnd: true,
    suggestionsEnabled: true,
    checkForUpdates: false,
    toneLabels: ['formal', 'casual', 'neutral'],
    toneTemplate: 'Text: {text}\nTone:',
    toneCalibrate: true,
    precision: 'exact',
  });
  assert.deepEqual(store.getSettings(), DEFAULT_SETTINGS);
  store.close();
});

test('updates persist, and decoding merges field by field', () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  store.updateSettings({ decoding: { temperature: 0.5 } });
  const after = store.updateSettings({ suggestionDelayMs: 250, decoding: { topK: 0, doSample: false } });
  assert.deepEqual(after, {
    ...DEFAULT_SETTINGS,
    suggestionDelayMs: 250,
    decoding: { ...DEFAULT_SETTINGS.decoding, temperature: 0.5, topK: 0, doSample: false },
  });
  // Returned objects are copies: changing one changes nothing stored.
  after.decoding.temperature = 3;
  store.close();

  const reopened = openStore(dir);
  assert.equal(reopened.getSettings().decoding.temperature, 0.5);
  assert.equal(reopened.getSettings().decoding.topK, 0);
  assert.equal(reopened.getSettings().suggestionDelayMs, 250);
  assert.equal(DEFAULT_SETTINGS.decoding.temperature, 0.8);
  reopened.close();
});

test('invalid values are refused with every problem named, and nothing is written', () => {
  const store = openStore(tempDataDir());
  const bad = {
    suggestionDelayMs: -5,
    stopAtSentenceEnd: 'yes',
    colour: 'blue',
    decoding: { temperature: 0, topP: 1.5, maxNewTokens: 2.5, repetitionPenalty: Number.NaN, beams: 4 },
  } as unknown as SettingsPatch;
  assert.throws(
    () => store.updateSettings(bad),
    (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.equal(error.code, 'INVALID_SETTINGS');
      for (const expected of [
        'suggestionDelayMs must be a whole number from 0 to 10000 (got -5)',
        'stopAtSentenceEnd must be true or false (got "yes")',
        'colour is not a setting',
        'decoding.temperature must be a number from 0.01 to 5 (got 0)',
        'decoding.topP must be a number above 0 and at most 1 (got 1.5)',
        'decoding.maxNewTokens must be a whole number from 1 to 256 (got 2.5)',
        'decoding.repetitionPenalty must be a number from 1 to 5 (got NaN)',
        'decoding.beams is not a setting',
      ]) {
        assert.ok(error.message.includes(expected), `missing "${expected}" in: ${error.message}`);
      }
      return true;
    },
  );
  // A patch with one good and one bad value writes neither.
  assert.throws(() => store.updateSettings({ suggestionDelayMs: 100, decoding: { topK: -1 } }), /decoding\.topK/);
  assert.throws(() => store.updateSettings(null as unknown as SettingsPatch), /must be an object/);
  assert.throws(() => store.updateSettings({ decoding: 3 } as unknown as SettingsPatch), /decoding must be an object/);
  assert.deepEqual(store.getSettings(), DEFAULT_SETTINGS);
  // Edges of the ranges are accepted; undefined counts as absent.
  store.updateSettings({ suggestionDelayMs: undefined, decoding: { temperature: 5, topP: 1, numAlternatives: 10 } });
  assert.equal(store.getSettings().decoding.topP, 1);
  store.close();
});

test('stored values that no longer pass the rules fall back to the defaults', () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  store.updateSettings({ suggestionDelayMs: 900, decoding: { topK: 7 } });
  store.close();

  const db = new Sqlite(store.path);
  db.prepare("UPDATE settings SET value = ? WHERE key = 'decoding'").run(JSON.stringify({ topK: 7, temperature: -1 }));
  db.prepare("INSERT INTO settings (key, value) VALUES ('suggestionsEnabled', 'not json')").run();
  db.prepare("INSERT INTO settings (key, value) VALUES ('retired', '1')").run();
  db.close();

  const reopened = openStore(dir);
  const settings = reopened.getSettings();
  assert.equal(settings.decoding.topK, 7);
  assert.equal(settings.decoding.temperature, DEFAULT_SETTINGS.decoding.temperature);
  assert.equal(settings.suggestionsEnabled, true);
  assert.equal(settings.suggestionDelayMs, 900);
  assert.equal('retired' in settings, false);
  reopened.close();
});

test('the suggestion precision round-trips through a reopen; anything but exact or fast is refused', () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  assert.equal(store.updateSettings({ precision: 'fast' }).precision, 'fast');
  assert.throws(
    () => store.updateSettings({ precision: 'int4' } as unknown as SettingsPatch),
    (error: unknown) => error instanceof StoreError && /precision must be "exact" or "fast" \(got "int4"\)/.test(error.message),
  );
  store.close();

  const reopened = openStore(dir);
  assert.equal(reopened.getSettings().precision, 'fast');
  assert.equal(reopened.updateSettings({ precision: 'exact' }).precision, 'exact');
  reopened.close();
  const again = openStore(dir);
  assert.equal(again.getSettings().precision, 'exact');
  again.close();
});
