import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CompletionRequest } from '../../main/ipc/contract.js';
import {
  PREFILL_SETTLE_MS,
  alternativesInfo,
  initialSuggestionState,
  step,
  visibleSuggestion,
  type SuggestionEffect,
  type SuggestionEvent,
  type SuggestionSettings,
  type SuggestionState,
} from '../../renderer/src/lib/suggestions.js';

const SETTINGS: SuggestionSettings = { enabled: true, delayMs: 300, stopAtSentenceEnd: true, numAlternatives: 3 };

/** A tiny editor around the state machine: it carries out inserts the way the real editor does. */
class Harness {
  state: SuggestionState;
  effects: SuggestionEffect[] = [];
  caret: number;

  constructor(
    public text: string,
    settings: Partial<SuggestionSettings> = {},
  ) {
    this.state = initialSuggestionState({ ...SETTINGS, ...settings }, 'doc-1', 't');
    this.caret = text.length;
  }

  get editor() {
    return { text: this.text, caret: this.caret, collapsed: true };
  }

  get ghost(): string {
    return visibleSuggestion(this.state);
  }

  send(event: SuggestionEvent): SuggestionEffect[] {
    const { state, effects } = step(this.state, event);
    this.state = state;
    this.effects.push(...effects);
    for (const effect of effects) if (effect.type === 'insert') this.type(effect.text);
    return effects;
  }

  type(chars: string): SuggestionEffect[] {
    this.text = this.text.slice(0, this.caret) + chars + this.text.slice(this.caret);
    this.caret += chars.length;
    return this.send({ type: 'input', editor: this.editor });
  }

  backspace(): SuggestionEffect[] {
    this.text = this.text.slice(0, this.caret - 1) + this.text.slice(this.caret);
    this.caret -= 1;
    return this.send({ type: 'input', editor: this.editor });
  }

  /** Fires the most recently scheduled pause timer. */
  pause(): SuggestionEffect[] {
    const scheduled = this.effects.filter((e) => e.type === 'schedule').at(-1);
    assert.ok(scheduled && scheduled.type === 'schedule', 'a pause timer was scheduled');
    return this.send({ type: 'timer', token: scheduled.token, editor: this.editor });
  }

  lastRequest(): CompletionRequest {
    const sent = this.effects.filter((e) => e.type === 'request').at(-1);
    assert.ok(sent && sent.type === 'request', 'a request was sent');
    return sent.request;
  }

  delta(requestId: string, text: string, alternative = 0): void {
    this.send({ type: 'completion', event: { requestId, type: 'delta', alternative, text } });
  }

  done(requestId: string, alternatives: string[], latencyMs = 42): void {
    this.send({ type: 'completion', event: { requestId, type: 'done', alternatives, latencyMs, reusedTokens: 0 } });
  }

  /** Types, pauses, and streams `chunks` as the answer; returns the request id. */
  suggest(chunks: string[], finish = true): string {
    this.send({ type: 'input', editor: this.editor });
    this.pause();
    const id = this.lastRequest().requestId;
    for (const chunk of chunks) this.delta(id, chunk);
    if (finish) this.done(id, [chunks.join('')]);
    return id;
  }

  requests(): CompletionRequest[] {
    return this.effects.flatMap((e) => (e.type === 'request' ? [e.request] : []));
  }
}

test('a pause after typing sends one request with the text before the caret', () => {
  const h = new Harness('');
  h.type('T');
  h.type('he cat');
  assert.equal(h.requests().length, 0, 'nothing while typing');
  // Only the latest timer counts: an older one firing late does nothing.
  h.send({ type: 'timer', token: 1, editor: h.editor });
  assert.equal(h.requests().length, 0);
  h.pause();
  assert.deepEqual(h.lastRequest(), { requestId: 't-3', documentId: 'doc-1', prefix: 'The cat', numAlternatives: 1 });
  const scheduled = h.effects.find((e) => e.type === 'schedule');
  assert.deepEqual(scheduled, { type: 'schedule', token: 1, delayMs: 300 });
});

test('no request when the pause ends mid-word, with a selection, or when suggestions are off', () => {
  const mid = new Harness('Hello world');
  mid.caret = 3;
  mid.send({ type: 'input', editor: mid.editor });
  mid.pause();
  assert.equal(mid.requests().length, 0);
  mid.send({ type: 'requestNow', editor: mid.editor });
  assert.equal(mid.requests().length, 0, 'not even when asked: the ghost would cover the rest of the line');

  const off = new Harness('Hello', { enabled: false });
  off.type(' there');
  assert.equal(off.effects.filter((e) => e.type === 'schedule').length, 0);
  // An explicit request (Ctrl+Space) still works.
  off.send({ type: 'requestNow', editor: off.editor });
  assert.equal(off.lastRequest().prefix, 'Hello there');

  const selected = new Harness('Hello world');
  selected.send({ type: 'input', editor: { ...selected.editor, collapsed: false } });
  assert.equal(selected.effects.filter((e) => e.type === 'schedule').length, 0);
});

test('deltas stream into the ghost text and done records the latency', () => {
  const h = new Harness('The cat');
  const id = h.suggest([' sat', ' on'], false);
  assert.equal(h.ghost, ' sat on');
  h.delta(id, ' the mat');
  assert.equal(h.ghost, ' sat on the mat');
  h.done(id, [' sat on the mat'], 87);
  assert.equal(h.ghost, ' sat on the mat');
  assert.equal(h.state.lastLatencyMs, 87);
});

test('Tab accepts the whole suggestion as one insert, and the next pause asks again', () => {
  const h = new Harness('The cat');
  h.suggest([' sat on the mat.']);
  const effects = h.send({ type: 'acceptAll' });
  assert.deepEqual(effects, [{ type: 'insert', text: ' sat on the mat.' }]);
  assert.equal(h.text, 'The cat sat on the mat.');
  assert.equal(h.ghost, '');
  h.pause();
  assert.equal(h.lastRequest().prefix, 'The cat sat on the mat.');
});

test('accepting while still streaming cancels the stream', () => {
  const h = new Harness('The cat');
  const id = h.suggest([' sat on'], false);
  const effects = h.send({ type: 'acceptAll' });
  assert.deepEqual(effects.slice(0, 2), [
    { type: 'cancel', requestId: id },
    { type: 'insert', text: ' sat on' },
  ]);
  h.delta(id, ' the mat');
  assert.equal(h.ghost, '', 'late deltas of the accepted request are ignored');
});

test('Ctrl+Right accepts one word at a time and keeps the rest', () => {
  const h = new Harness('The cat');
  h.suggest([' sat on the mat.']);
  h.send({ type: 'acceptWord' });
  assert.equal(h.text, 'The cat sat');
  assert.equal(h.ghost, ' on the mat.');
  h.send({ type: 'acceptWord' });
  h.send({ type: 'acceptWord' });
  assert.equal(h.ghost, ' mat.');
  h.send({ type: 'acceptWord' });
  assert.equal(h.text, 'The cat sat on the mat.');
  assert.equal(h.ghost, '');
  assert.equal(h.effects.filter((e) => e.type === 'cancel').length, 0, 'nothing was cancelled');
});

test('typing the start of the suggestion keeps the rest without a new request', () => {
  const h = new Harness('The cat');
  h.suggest([' sat on the mat.']);
  const before = h.effects.length;
  h.type(' ');
  h.type('s');
  h.type('at');
  assert.equal(h.ghost, ' on the mat.');
  assert.deepEqual(h.effects.slice(before), [], 'no cancel, no request, no timer');
});

test('typing through while it streams keeps the stream and shows what is left', () => {
  const h = new Harness('The cat');
  const id = h.suggest([' sat'], false);
  h.type(' sa');
  assert.equal(h.ghost, 't');
  h.type('t');
  assert.equal(h.ghost, '');
  assert.equal(h.state.pending?.id, id, 'still waiting for more');
  h.delta(id, ' still');
  assert.equal(h.ghost, ' still');
});

test('typing something else cancels the request and drops the suggestion', () => {
  const h = new Harness('The cat');
  const id = h.suggest([' sat on'], false);
  const effects = h.type(' r');
  assert.equal(h.ghost, '');
  assert.deepEqual(effects, [
    { type: 'cancel', requestId: id },
    { type: 'schedule', token: 3, delayMs: 300 },
  ]);
  h.delta(id, ' the mat');
  assert.equal(h.ghost, '', 'the cancelled stream no longer shows');
});

test('deleting or moving the caret drops the suggestion', () => {
  const h = new Harness('The cat');
  h.suggest([' sat.']);
  h.backspace();
  assert.equal(h.ghost, '');

  const moved = new Harness('The cat');
  moved.suggest([' sat.']);
  moved.send({ type: 'caret', editor: moved.editor });
  assert.equal(moved.ghost, ' sat.', 'a caret event at the same place changes nothing');
  moved.send({ type: 'caret', editor: { ...moved.editor, caret: 2 } });
  assert.equal(moved.ghost, '');
});

test('Ctrl+Space asks at once, superseding a running request', () => {
  const h = new Harness('The cat');
  const first = h.suggest([' sat'], false);
  const effects = h.send({ type: 'requestNow', editor: h.editor });
  assert.deepEqual(effects[0], { type: 'cancel', requestId: first });
  assert.equal(effects[1]?.type, 'request');
  const second = h.lastRequest();
  assert.notEqual(second.requestId, first);
  assert.equal(second.prefix, 'The cat');
  assert.equal(h.ghost, '', 'the old ghost text is gone');
  h.delta(second.requestId, ' purred.');
  assert.equal(h.ghost, ' purred.');
});

test('events of superseded requests are ignored', () => {
  const h = new Harness('The cat');
  const first = h.suggest([' sat'], false);
  h.type('s');
  h.pause();
  const second = h.lastRequest().requestId;
  assert.notEqual(first, second);
  h.delta(first, ' on the mat');
  h.done(first, [' sat on the mat'], 5);
  assert.equal(h.ghost, '');
  assert.equal(h.state.lastLatencyMs, null, 'the stale done did not count');
  h.delta(second, ' purred.');
  assert.equal(h.ghost, ' purred.');
});

test('Esc dismisses and cancels a running request', () => {
  const h = new Harness('The cat');
  const id = h.suggest([' sat'], false);
  const effects = h.send({ type: 'dismiss' });
  assert.deepEqual(effects, [{ type: 'cancel', requestId: id }]);
  assert.equal(h.ghost, '');
  assert.deepEqual(h.send({ type: 'dismiss' }), [], 'nothing left to dismiss');
});

test('shown text is cleaned: no repeated words, no doubled space, cut at the sentence end', () => {
  const h = new Harness('I went to the ');
  h.suggest(['the', ' store', '. Then home']);
  assert.equal(h.ghost, 'store.');

  const blank = new Harness('Hello');
  blank.suggest(['   ']);
  assert.equal(blank.ghost, '');
  assert.equal(blank.state.suggestion, null, 'a blank suggestion is dropped');
});

test('an error ends the suggestion and is reported', () => {
  const h = new Harness('The cat');
  const id = h.suggest([], false);
  h.send({ type: 'completion', event: { requestId: id, type: 'error', error: { code: 'ENGINE', message: 'model not loaded' } } });
  assert.equal(h.state.lastError, 'model not loaded');
  assert.equal(h.state.pending, null);
  assert.equal(h.ghost, '');
});

test('cycling fetches alternatives at the same anchor once, then cycles both ways', () => {
  const h = new Harness('The cat');
  const first = h.suggest([' sat.']);
  h.type(' ');
  assert.equal(h.ghost, 'sat.');
  h.send({ type: 'cycle', direction: 1, editor: h.editor });
  const req = h.lastRequest();
  assert.notEqual(req.requestId, first);
  assert.equal(req.prefix, 'The cat', 'same prefix as the shown suggestion');
  assert.equal(req.numAlternatives, 3);
  assert.equal(h.ghost, 'sat.', 'the current one stays while alternatives load');

  // Duplicates of the current one, blanks and ones that no longer fit what was typed are dropped.
  h.done(req.requestId, [' ran.', ' sat.', '  ', 'x', ' slept.']);
  assert.deepEqual(alternativesInfo(h.state), { index: 2, count: 3 });
  assert.equal(h.ghost, 'ran.');
  h.send({ type: 'cycle', direction: 1, editor: h.editor });
  assert.equal(h.ghost, 'slept.');
  h.send({ type: 'cycle', direction: 1, editor: h.editor });
  assert.equal(h.ghost, 'sat.');
  h.send({ type: 'cycle', direction: -1, editor: h.editor });
  assert.equal(h.ghost, 'slept.');
  assert.equal(h.requests().length, 2, 'alternatives were fetched once');

  h.send({ type: 'acceptAll' });
  assert.equal(h.text, 'The cat slept.');
});

test('cycling backwards first shows the last alternative; typing narrows the alternatives', () => {
  const h = new Harness('The dog');
  h.suggest([' barked.']);
  h.send({ type: 'cycle', direction: -1, editor: h.editor });
  h.done(h.lastRequest().requestId, [' barked loudly.', ' slept.']);
  assert.equal(h.ghost, ' slept.');
  h.type(' b');
  assert.equal(h.ghost, '', 'typing against the shown alternative drops the suggestion');
  assert.equal(alternativesInfo(h.state), null);

  const k = new Harness('The dog');
  k.suggest([' barked.']);
  k.send({ type: 'cycle', direction: 1, editor: k.editor });
  k.done(k.lastRequest().requestId, [' barked loudly.', ' slept.']);
  assert.equal(k.ghost, ' barked loudly.');
  k.type(' bark');
  assert.deepEqual(alternativesInfo(k.state), { index: 2, count: 2 }, '" slept." no longer fits');
  assert.equal(k.ghost, 'ed loudly.');
});

test('cycling with nothing shown asks for alternatives right away', () => {
  const h = new Harness('Once upon a time');
  h.send({ type: 'cycle', direction: 1, editor: h.editor });
  const req = h.lastRequest();
  assert.equal(req.numAlternatives, 3);
  h.delta(req.requestId, ' there');
  assert.equal(h.ghost, '', 'alternatives are shown when complete, not streamed');
  h.done(req.requestId, [' there was', ' in a land']);
  assert.equal(h.ghost, ' there was');
  assert.deepEqual(alternativesInfo(h.state), { index: 1, count: 2 });
});

test('switching documents or turning suggestions off clears everything', () => {
  const h = new Harness('The cat');
  const id = h.suggest([' sat'], false);
  const effects = h.send({ type: 'document', documentId: 'doc-2' });
  assert.deepEqual(effects, [{ type: 'cancel', requestId: id }]);
  assert.equal(h.state.documentId, 'doc-2');
  assert.equal(h.ghost, '');

  const k = new Harness('The cat');
  k.suggest([' sat.']);
  k.send({ type: 'settings', settings: { ...SETTINGS, enabled: false } });
  assert.equal(k.ghost, '');
});

test('a caret that comes to rest at a completion point warms the engine there: one prefill-only request, nothing shown', () => {
  const h = new Harness('The cat sat.\nA dog');
  h.caret = 12; // the end of the first line
  h.send({ type: 'caret', editor: h.editor });
  assert.equal(h.requests().length, 0, 'nothing before the pause');
  // The arrow keys move on before the timer fires: only the latest position is warmed.
  h.caret = h.text.length;
  h.send({ type: 'caret', editor: h.editor });
  // A shorter wait than the pause after typing (300 here): the prefill should be under way when typing starts.
  assert.deepEqual(h.effects.filter((e) => e.type === 'schedule').map((e) => e.type === 'schedule' && e.delayMs), [PREFILL_SETTLE_MS, PREFILL_SETTLE_MS]);
  h.pause();
  assert.deepEqual(h.requests(), [{ requestId: 't-3', documentId: 'doc-1', prefix: 'The cat sat.\nA dog', prefillOnly: true }]);
  // Its events are not a suggestion: no ghost text, no latency, no waiting indicator.
  h.done('t-3', []);
  assert.equal(h.ghost, '');
  assert.equal(h.state.lastLatencyMs, null);
  assert.equal(h.state.pending, null);
  // A caret event at the same place afterwards does not warm again.
  h.send({ type: 'caret', editor: h.editor });
  assert.equal(h.effects.filter((e) => e.type === 'schedule').length, 2);

  // Typing then replaces the prefill timer with the suggestion's own, and the pause asks for a suggestion.
  h.type(' ran');
  h.pause();
  assert.deepEqual(h.lastRequest(), { requestId: 't-5', documentId: 'doc-1', prefix: 'The cat sat.\nA dog ran', numAlternatives: 1 });
});

test('no prefill mid-line, with a selection, on an empty document, or when suggestions are off', () => {
  const cases: [Harness, number, boolean][] = [
    [new Harness('Hello world'), 3, true],
    [new Harness('Hello world'), 11, false],
    [new Harness('   '), 3, true],
    [new Harness('Hello world', { enabled: false }), 11, true],
  ];
  for (const [h, caret, collapsed] of cases) {
    h.caret = caret;
    h.send({ type: 'caret', editor: { ...h.editor, collapsed } });
    assert.equal(h.effects.filter((e) => e.type === 'schedule').length, 0, JSON.stringify(h.editor));
  }
  // A prefill timer that fires after the caret moved on (or the text changed under it) sends nothing.
  const moved = new Harness('Hello world');
  moved.send({ type: 'caret', editor: moved.editor });
  const token = moved.effects.find((e) => e.type === 'schedule');
  assert.ok(token?.type === 'schedule');
  moved.send({ type: 'timer', token: token.token, editor: { ...moved.editor, caret: 5 } });
  assert.equal(moved.requests().length, 0);
});

test('moving the caret away from a suggestion cancels it and warms the new place', () => {
  const h = new Harness('First line\nSecond');
  const id = h.suggest([' sat.'], false);
  h.caret = 10; // the end of "First line"
  const effects = h.send({ type: 'caret', editor: h.editor });
  assert.deepEqual(effects.map((e) => e.type), ['cancel', 'schedule']);
  assert.deepEqual(effects[0], { type: 'cancel', requestId: id });
  assert.equal(h.ghost, '');
  h.pause();
  assert.equal(h.lastRequest().prefix, 'First line');
  assert.equal(h.lastRequest().prefillOnly, true);
  // Leaving the editor drops the timer as it drops a suggestion.
  h.caret = h.text.length;
  h.send({ type: 'caret', editor: h.editor });
  assert.deepEqual(h.send({ type: 'dismiss' }), [{ type: 'unschedule' }]);
});
