// Prompt templates in the store: seeded from the built-in ones, editable (validated), user templates
// deletable, built-in ones reset to their default; and the tone settings' validation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { openStore, StoreError } from '../../main/store/index.js';
import { BUILTIN_TEMPLATES } from '../../worker/rewrite/templates.js';
import { manualClock, tempDataDir } from './helpers.js';

const isStoreError = (code: string) => (error: unknown) => error instanceof StoreError && error.code === code;

test('the built-in templates are seeded once, with their notes, and come first', () => {
  const dir = tempDataDir();
  let store = openStore(dir);
  const listed = store.templates.list();
  assert.deepEqual(
    listed.map((t) => t.id).sort(),
    BUILTIN_TEMPLATES.map((t) => t.id).sort(),
  );
  const fr = store.templates.get('translate-en-fr')!;
  assert.equal(fr.kind, 'translate');
  assert.equal(fr.builtin, true);
  assert.equal(fr.modified, false);
  assert.match(fr.note ?? '', /GPT-2/);
  assert.deepEqual(fr.stop, ['\n', 'English:']);
  store.templates.save({ name: 'Shorter', kind: 'rewrite', prompt: 'Long: {text}\nShort:', stop: ['\n'] });
  store.close();
  store = openStore(dir);
  assert.equal(store.templates.list().length, BUILTIN_TEMPLATES.length + 1, 'reopening seeds nothing twice');
  assert.equal(store.templates.list().at(-1)!.name, 'Shorter', 'user templates after the built-in ones');
  store.close();
});

test('templates are created, changed and deleted; built-in ones are reset, not deleted', () => {
  const clock = manualClock();
  const store = openStore(tempDataDir(), { now: clock.now });
  const created = store.templates.save({ name: '  Pirate ', kind: 'rewrite', prompt: 'Plain: {text}\nPirate:', stop: ['\n', 'Plain:'], note: 'Arr.' });
  assert.equal(created.name, 'Pirate');
  assert.equal(created.builtin, false);
  assert.deepEqual(created.stop, ['\n', 'Plain:']);
  clock.advance(5000);
  const changed = store.templates.save({ ...created, prompt: 'Landlubber: {text}\nPirate:' });
  assert.equal(changed.prompt, 'Landlubber: {text}\nPirate:');
  assert.equal(changed.updatedAt, created.updatedAt + 5000);
  store.templates.delete(created.id);
  assert.equal(store.templates.get(created.id), null);
  assert.throws(() => store.templates.delete(created.id), isStoreError('NOT_FOUND'));

  const formal = store.templates.get('formal')!;
  const edited = store.templates.save({ ...formal, name: 'Very formal', stop: ['\n\n'] });
  assert.equal(edited.modified, true);
  assert.equal(edited.builtin, true);
  assert.throws(() => store.templates.delete('formal'), isStoreError('INVALID_INPUT'));
  const reset = store.templates.reset('formal');
  assert.equal(reset.name, BUILTIN_TEMPLATES.find((t) => t.id === 'formal')!.name);
  assert.deepEqual(reset.stop, ['\n', 'Informal:']);
  assert.equal(reset.modified, false);
  assert.throws(() => store.templates.reset('no-such'), isStoreError('NOT_FOUND'));
  store.close();
});

test('a template that would not run is refused, naming the problem', () => {
  const store = openStore(tempDataDir());
  const base = { name: 'T', kind: 'rewrite' as const, prompt: 'A: {text}\nB:', stop: ['\n'] };
  assert.throws(() => store.templates.save({ ...base, prompt: 'no slot' }), (e: unknown) => isStoreError('INVALID_INPUT')(e) && /\{text\}/.test((e as Error).message));
  assert.throws(() => store.templates.save({ ...base, prompt: '{text} and {text}' }), isStoreError('INVALID_INPUT'));
  assert.throws(() => store.templates.save({ ...base, stop: [''] }), isStoreError('INVALID_INPUT'));
  assert.throws(() => store.templates.save({ ...base, kind: 'poem' as 'rewrite' }), isStoreError('INVALID_INPUT'));
  assert.throws(() => store.templates.save({ ...base, name: '  ' }), isStoreError('INVALID_INPUT'));
  assert.throws(() => store.templates.save({ ...base, id: 'missing' }), isStoreError('NOT_FOUND'));
  assert.equal(store.templates.list().length, BUILTIN_TEMPLATES.length, 'nothing was written');
  store.close();
});

test('an unchanged built-in template follows the app default; a changed one is kept', () => {
  const dir = tempDataDir();
  let store = openStore(dir);
  store.templates.save({ ...store.templates.get('casual')!, name: 'Mine' });
  store.close();
  // An older version's defaults, as if written by an earlier release.
  const db = new Sqlite(`${dir}/inkling.db`);
  db.prepare("UPDATE templates SET prompt = 'old {text}' WHERE id = 'formal'").run();
  db.close();
  store = openStore(dir);
  assert.equal(store.templates.get('formal')!.prompt, BUILTIN_TEMPLATES.find((t) => t.id === 'formal')!.prompt);
  assert.equal(store.templates.get('casual')!.name, 'Mine');
  store.close();
});

test('tone settings: defaults, and labels and template are validated', () => {
  const store = openStore(tempDataDir());
  const settings = store.getSettings();
  assert.deepEqual(settings.toneLabels, ['formal', 'casual', 'neutral']);
  assert.match(settings.toneTemplate, /\{text\}/);
  assert.equal(settings.toneCalibrate, true);
  assert.deepEqual(store.updateSettings({ toneLabels: ['happy', 'sad'], toneCalibrate: false }).toneLabels, ['happy', 'sad']);
  assert.throws(() => store.updateSettings({ toneLabels: ['only'] }), isStoreError('INVALID_SETTINGS'));
  assert.throws(() => store.updateSettings({ toneLabels: ['a', 'a'] }), isStoreError('INVALID_SETTINGS'));
  assert.throws(() => store.updateSettings({ toneTemplate: 'no slot' }), isStoreError('INVALID_SETTINGS'));
  assert.equal(store.getSettings().toneCalibrate, false);
  store.close();
});
