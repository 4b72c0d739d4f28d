import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Template } from '../../main/ipc/contract.js';
import {
  applyAssistEvent,
  formatStopStrings,
  isAssistShortcut,
  menuEntries,
  parseStopStrings,
  planInsertion,
  startRun,
  templateProblem,
  toneRows,
} from '../../renderer/src/lib/assist.js';

const template = (id: string, kind: Template['kind'], name = id): Template => ({
  id, name, kind, prompt: 'A: {text}\nB:', stop: ['\n'], note: kind === 'translate' ? 'weak' : null, builtin: true, modified: false, updatedAt: 0,
});

test('the menu: Continue, rewrites, translations, Classify tone', () => {
  const entries = menuEntries([template('fr', 'translate'), template('formal', 'rewrite'), template('casual', 'rewrite')]);
  assert.deepEqual(entries.map((e) => `${e.group}:${e.action}`), ['continue:continue', 'rewrite:formal', 'rewrite:casual', 'translate:fr', 'tone:tone']);
});

test('Ctrl+Shift+K (Cmd on a Mac) opens the menu; other chords do not', () => {
  const key = { key: 'K', code: 'KeyK', ctrlKey: true, metaKey: false, altKey: false, shiftKey: true };
  assert.equal(isAssistShortcut(key, false), true);
  assert.equal(isAssistShortcut(key, true), false);
  assert.equal(isAssistShortcut({ ...key, ctrlKey: false, metaKey: true }, true), true);
  assert.equal(isAssistShortcut({ ...key, shiftKey: false }, false), false);
  assert.equal(isAssistShortcut({ ...key, code: 'KeyJ', key: 'J' }, false), false);
});

test('a run collects its deltas, takes the final output, and ignores other runs', () => {
  let run = startRun('r1', template('fr', 'translate'), { start: 0, end: 5, text: 'Hello' });
  assert.equal(run.mode, 'replace');
  assert.equal(run.note, 'weak');
  run = applyAssistEvent(run, { requestId: 'r1', type: 'delta', text: 'Bon' });
  run = applyAssistEvent(run, { requestId: 'old', type: 'delta', text: 'XXX' });
  run = applyAssistEvent(run, { requestId: 'r1', type: 'delta', text: 'jour ' });
  assert.equal(run.output, 'Bonjour ');
  run = applyAssistEvent(run, { requestId: 'r1', type: 'done', output: 'Bonjour', finishReason: 'stop' });
  assert.equal(run.status, 'done');
  assert.equal(run.output, 'Bonjour');
  assert.equal(applyAssistEvent(run, { requestId: 'r1', type: 'delta', text: '!' }), run, 'nothing after the end');
  const failed = applyAssistEvent(startRun('r2', null, { start: 0, end: 1, text: 'a' }), { requestId: 'r2', type: 'error', error: { code: 'X', message: 'boom' } });
  assert.deepEqual([failed.status, failed.error, failed.mode], ['error', 'boom', 'after']);
});

test('Insert replaces the selection, Continue inserts after it, and a changed document is handled', () => {
  const doc = 'Say hello to them.';
  const selection = { start: 4, end: 9, text: 'hello' };
  const rewrite = { ...startRun('r', template('formal', 'rewrite'), selection), output: ' greetings ', status: 'done' as const };
  assert.deepEqual(planInsertion(doc, rewrite), { start: 4, end: 9, text: 'greetings' });
  const cont = { ...startRun('c', null, selection), output: ' and goodbye', status: 'done' as const };
  assert.deepEqual(planInsertion(doc, cont), { start: 9, end: 9, text: ' and goodbye' });
  assert.deepEqual(planInsertion('Oh! Say hello to them.', rewrite), { start: 8, end: 13, text: 'greetings' }, 'found where it moved');
  assert.match((planInsertion('Say hi to them.', rewrite) as { error: string }).error, /changed/);
  assert.match((planInsertion(doc, { ...rewrite, output: '  ' }) as { error: string }).error, /no output/);
});

test('stop strings round-trip through the editor field; templates need {text} once', () => {
  const stop = ['\n', 'English:', 'a\\b', '\t'];
  assert.equal(formatStopStrings(['\n', 'English:']), '\\n\nEnglish:');
  assert.deepEqual(parseStopStrings(formatStopStrings(stop)), stop);
  assert.equal(templateProblem('T', 'A {text} B'), null);
  assert.match(templateProblem('T', 'no slot') ?? '', /exactly once/);
  assert.match(templateProblem(' ', '{text}') ?? '', /name/);
});

test('tone rows: most probable first, as percentages', () => {
  const rows = toneRows({ label: 'casual', calibrated: true, scores: [
    { label: 'formal', probability: 0.2, uncalibratedProbability: 0.5 },
    { label: 'casual', probability: 0.7, uncalibratedProbability: 0.3 },
    { label: 'neutral', probability: 0.1, uncalibratedProbability: 0.2 },
  ] });
  assert.deepEqual(rows.map((r) => `${r.label} ${r.percent}`), ['casual 70%', 'formal 20%', 'neutral 10%']);
});
