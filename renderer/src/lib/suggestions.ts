/**
 * The inline-suggestion state machine: a pure `step(state, event)` that returns the next state and the
 * effects the editor must carry out (call the API, set a timer, insert text). Keeping it free of the DOM
 * and of timers makes every rule here testable with plain values.
 *
 * The life of a suggestion: typing (re)starts a pause timer; when it fires at a sensible caret position a
 * request goes out; `delta` events grow the ghost text; Tab inserts it, Ctrl+→ inserts one word; typing
 * the same characters as the ghost text "types through" it and keeps the rest; anything else drops it.
 *
 * A caret that comes to rest somewhere new (a click, the arrow keys) starts the same timer, shorter, for a
 * prefill: when it fires, a request with `prefillOnly` has the engine run the prompt there, which shows
 * nothing. On a large model and a long document that is seconds of work that the first suggestion there no
 * longer waits for.
 */
import type { CompletionEvent, CompletionRequest } from '../../../main/ipc/contract.js';
import { CONTEXT_TAIL_CHARS, cleanSuggestion, isCompletionPoint, nextWordLength, promptPrefix } from './suggestion-text.js';

export interface SuggestionSettings {
  /** Automatic suggestions after a pause; explicit requests (Ctrl+Space, cycling) work either way. */
  enabled: boolean;
  delayMs: number;
  stopAtSentenceEnd: boolean;
  /** Alternatives fetched on the first cycle. */
  numAlternatives: number;
}

/** What the editor looks like right now. `collapsed`: no text is selected. */
export interface EditorSnapshot {
  text: string;
  caret: number;
  collapsed: boolean;
}

/** A suggestion anchored at the caret position where it was asked for. */
export interface Suggestion {
  /** Caret position when the request went out; the text before it has not changed since. */
  anchor: number;
  /** Document length at that moment, to recognise type-through by length alone. */
  lengthAtAnchor: number;
  /** The text just before the anchor, for the clean-up rules. */
  before: string;
  /** Raw continuations, one per alternative. */
  raws: string[];
  index: number;
  /** Characters typed (or accepted) through since the anchor, all matching the suggestion. */
  typed: string;
  /** The shown alternative may still grow: its stream is running. */
  streaming: boolean;
  alternativesFetched: boolean;
}

export interface PendingRequest {
  id: string;
  /** 'inline' streams into the ghost text; 'alternatives' replaces the list when done. */
  purpose: 'inline' | 'alternatives';
  direction: 1 | -1;
}

export interface SuggestionState {
  settings: SuggestionSettings;
  documentId: string;
  idPrefix: string;
  /** Counter behind request ids and timer tokens. */
  seq: number;
  /** 'suggest' asks for a suggestion when it fires; 'prefill' only warms the engine's cache (nothing shown). */
  timer: { token: number; caret: number; purpose: 'suggest' | 'prefill' } | null;
  /** Where the last prefill was scheduled, while the text is unchanged: caret events there do not repeat it. */
  prefilledAt: number | null;
  pending: PendingRequest | null;
  suggestion: Suggestion | null;
  lastLatencyMs: number | null;
  lastError: string | null;
}

export type SuggestionEvent =
  /** The user changed the text (typing, paste, undo, or the editor inserting an accepted suggestion). */
  | { type: 'input'; editor: EditorSnapshot }
  /** The selection moved without a text change. */
  | { type: 'caret'; editor: EditorSnapshot }
  | { type: 'timer'; token: number; editor: EditorSnapshot }
  | { type: 'completion'; event: CompletionEvent }
  /** `api.complete` itself rejected. */
  | { type: 'requestFailed'; requestId: string; message: string }
  | { type: 'acceptAll' }
  | { type: 'acceptWord' }
  | { type: 'dismiss' }
  | { type: 'cycle'; direction: 1 | -1; editor: EditorSnapshot }
  | { type: 'requestNow'; editor: EditorSnapshot }
  | { type: 'settings'; settings: SuggestionSettings }
  | { type: 'document'; documentId: string };

export type SuggestionEffect =
  | { type: 'request'; request: CompletionRequest }
  | { type: 'cancel'; requestId: string }
  /** (Re)start the single pause timer; when it fires, send `{ type: 'timer', token }`. */
  | { type: 'schedule'; token: number; delayMs: number }
  | { type: 'unschedule' }
  /** Insert at the caret as if typed, as one undo step. */
  | { type: 'insert'; text: string };

export interface Step {
  state: SuggestionState;
  effects: SuggestionEffect[];
}

export function initialSuggestionState(settings: SuggestionSettings, documentId = '', idPrefix = 'r'): SuggestionState {
  return {
    settings,
    documentId,
    idPrefix,
    seq: 0,
    timer: null,
    prefilledAt: null,
    pending: null,
    suggestion: null,
    lastLatencyMs: null,
    lastError: null,
  };
}

/** The ghost text to show at the caret ("" for none). */
export function visibleSuggestion(state: SuggestionState): string {
  const s = state.suggestion;
  return s ? remainderOf(s, s.raws[s.index] ?? '', state.settings) : '';
}

/** How many alternatives can be cycled through, and which one is shown (1-based), for a hint. */
export function alternativesInfo(state: SuggestionState): { index: number; count: number } | null {
  const s = state.suggestion;
  if (!s || !s.alternativesFetched || s.raws.length < 2) return null;
  return { index: s.index + 1, count: s.raws.length };
}

/** The caret position a live suggestion belongs to. */
export function suggestionCaret(s: Suggestion): number {
  return s.anchor + s.typed.length;
}

function remainderOf(s: Suggestion, raw: string, settings: SuggestionSettings, final = !s.streaming): string {
  const cleaned = cleanSuggestion(raw, s.before, { stopAtSentenceEnd: settings.stopAtSentenceEnd, final });
  if (!cleaned.startsWith(s.typed)) return '';
  const rest = cleaned.slice(s.typed.length);
  return rest.trim() === '' ? '' : rest;
}

export function step(state: SuggestionState, event: SuggestionEvent): Step {
  switch (event.type) {
    case 'input':
      return onInput(state, event.editor);
    case 'caret':
      return onCaret(state, event.editor);
    case 'timer':
      return onTimer(state, event.token, event.editor);
    case 'completion':
      return onCompletion(state, event.event);
    case 'requestFailed':
      return state.pending?.id === event.requestId ? endStream(state, event.message) : same(state);
    case 'acceptAll': {
      const text = visibleSuggestion(state);
      if (text === '') return same(state);
      // The insert comes back as an 'input' event; with no suggestion left it starts the next pause.
      const cleared = clearAll(state);
      return { state: cleared.state, effects: [...cleared.effects, { type: 'insert', text }] };
    }
    case 'acceptWord': {
      const text = visibleSuggestion(state);
      if (text === '') return same(state);
      // Inserting the word makes an 'input' event that types through it, like typing it by hand.
      return { state, effects: [{ type: 'insert', text: nextWord(text) }] };
    }
    case 'dismiss':
      return clearAll(state);
    case 'cycle':
      return onCycle(state, event.direction, event.editor);
    case 'requestNow': {
      const cleared = clearAll(state);
      const editor = event.editor;
      if (!editor.collapsed || !isCompletionPoint(editor.text, editor.caret)) return cleared;
      const sent = request(cleared.state, editor, 'inline', 1, 1);
      return { state: sent.state, effects: [...cleared.effects, ...sent.effects] };
    }
    case 'settings': {
      const next = { ...state, settings: event.settings };
      return event.settings.enabled ? same(next) : clearAll(next);
    }
    case 'document': {
      const cleared = clearAll(state);
      return { ...cleared, state: { ...cleared.state, documentId: event.documentId, prefilledAt: null } };
    }
  }
}

function nextWord(text: string): string {
  return text.slice(0, nextWordLength(text));
}

function same(state: SuggestionState): Step {
  return { state, effects: [] };
}

/** Drops the suggestion, the request in flight and the pause timer. */
function clearAll(state: SuggestionState): Step {
  const effects: SuggestionEffect[] = [];
  if (state.pending) effects.push({ type: 'cancel', requestId: state.pending.id });
  if (state.timer) effects.push({ type: 'unschedule' });
  if (!state.pending && !state.timer && !state.suggestion) return same(state);
  return { state: { ...state, pending: null, timer: null, suggestion: null }, effects };
}

/**
 * How long the caret must rest before the prefill goes out: long enough that holding an arrow key sends none,
 * short enough that it starts while the user begins to type (typing does not stop it; the suggestion asked for
 * after the pause takes over from it and keeps what it ran).
 */
export const PREFILL_SETTLE_MS = 150;

function schedule(state: SuggestionState, caret: number, purpose: 'suggest' | 'prefill' = 'suggest'): Step {
  if (!state.settings.enabled) return same(state);
  const token = state.seq + 1;
  return {
    state: { ...state, seq: token, timer: { token, caret, purpose } },
    effects: [{ type: 'schedule', token, delayMs: purpose === 'prefill' ? PREFILL_SETTLE_MS : state.settings.delayMs }],
  };
}


function onInput(previous: SuggestionState, editor: EditorSnapshot): Step {
  const state = previous.prefilledAt === null ? previous : { ...previous, prefilledAt: null };
  const s = state.suggestion;
  const typed = s ? typedThrough(state, s, editor) : null;
  if (s && typed !== null) {
    const kept = keepMatching(state, { ...s, typed: s.typed + typed });
    if (kept) {
      const next = { ...state, suggestion: kept };
      if (visibleSuggestion(next) !== '' || kept.streaming) return same(next);
    }
    // Typed (or accepted) to the end of the suggestion: the next one starts after a pause.
    const cleared = clearAll(state);
    const scheduled = schedule(cleared.state, editor.caret);
    return { state: scheduled.state, effects: [...cleared.effects, ...scheduled.effects] };
  }
  if (!editor.collapsed) return clearAll(state);
  return clearAndSchedule(state, editor.caret, 'suggest');
}

/** Drops everything, then starts the timer at `caret`. */
function clearAndSchedule(state: SuggestionState, caret: number, purpose: 'suggest' | 'prefill'): Step {
  const cleared = clearAll(state);
  const scheduled = schedule(cleared.state, caret, purpose);
  // The schedule effect replaces any timer, so an 'unschedule' right before it is redundant.
  const effects = cleared.effects.filter((e) => e.type !== 'unschedule');
  return { state: scheduled.state, effects: [...effects, ...scheduled.effects] };
}

/**
 * The characters just typed at the suggestion's caret, if they continue it exactly; null if the edit was
 * anything else (deletion, typing elsewhere, a different character).
 */
function typedThrough(state: SuggestionState, s: Suggestion, editor: EditorSnapshot): string | null {
  if (!editor.collapsed) return null;
  const added = editor.text.length - (s.lengthAtAnchor + s.typed.length);
  if (added <= 0 || editor.caret !== suggestionCaret(s) + added) return null;
  const inserted = editor.text.slice(editor.caret - added, editor.caret);
  return visibleSuggestion(state).startsWith(inserted) ? inserted : null;
}

/** Keeps only the alternatives that still agree with what was typed; null if none does. */
function keepMatching(state: SuggestionState, s: Suggestion): Suggestion | null {
  const current = s.raws[s.index] ?? '';
  const keep = s.raws.filter((raw) => raw === current || remainderOf(s, raw, state.settings, true) !== '');
  const index = keep.indexOf(current);
  if (index < 0) return null;
  return { ...s, raws: keep, index };
}

function onCaret(state: SuggestionState, editor: EditorSnapshot): Step {
  const expected = state.suggestion ? suggestionCaret(state.suggestion) : (state.timer?.caret ?? state.prefilledAt);
  if (editor.collapsed && editor.caret === expected) return same(state);
  if (!editor.collapsed || !isCompletionPoint(editor.text, editor.caret)) return clearAll(state);
  // Where a suggestion could be asked for: warm the engine's cache there once the caret rests.
  return clearAndSchedule({ ...state, prefilledAt: editor.caret }, editor.caret, 'prefill');
}

function onTimer(state: SuggestionState, token: number, editor: EditorSnapshot): Step {
  if (state.timer?.token !== token) return same(state);
  const next = { ...state, timer: null };
  if (!state.settings.enabled || !editor.collapsed || editor.caret !== state.timer.caret) return same(next);
  if (!isCompletionPoint(editor.text, editor.caret)) return same(next);
  if (state.timer.purpose === 'prefill') return prefill(next, editor);
  return request(next, editor, 'inline', 1, 1);
}

/**
 * Has the engine run the prompt at the caret without suggesting anything. Not a pending request: its events
 * are ignored, and it needs no cancelling, since any later request supersedes it in the engine (which still
 * keeps what the prefill ran).
 */
function prefill(state: SuggestionState, editor: EditorSnapshot): Step {
  const seq = state.seq + 1;
  const request: CompletionRequest = { ...requestAt(state, seq, editor), prefillOnly: true };
  return { state: { ...state, seq }, effects: [{ type: 'request', request }] };
}

/** The request fields every request at the caret has: its id (from `seq`), the document and the prompt text. */
function requestAt(state: SuggestionState, seq: number, editor: EditorSnapshot): CompletionRequest {
  return { requestId: `${state.idPrefix}-${seq}`, documentId: state.documentId, prefix: promptPrefix(editor.text, editor.caret) };
}

/** Sends a new request anchored at the caret, superseding any other. */
function request(
  state: SuggestionState,
  editor: EditorSnapshot,
  purpose: PendingRequest['purpose'],
  numAlternatives: number,
  direction: 1 | -1,
): Step {
  const seq = state.seq + 1;
  const base = requestAt(state, seq, editor);
  const id = base.requestId;
  const effects: SuggestionEffect[] = [];
  if (state.pending) effects.push({ type: 'cancel', requestId: state.pending.id });
  if (state.timer) effects.push({ type: 'unschedule' });
  effects.push({ type: 'request', request: { ...base, numAlternatives } });
  const suggestion: Suggestion = {
    anchor: editor.caret,
    lengthAtAnchor: editor.text.length,
    before: editor.text.slice(Math.max(0, editor.caret - CONTEXT_TAIL_CHARS), editor.caret),
    raws: [],
    index: 0,
    typed: '',
    streaming: purpose === 'inline',
    alternativesFetched: false,
  };
  return {
    state: { ...state, seq, timer: null, pending: { id, purpose, direction }, suggestion, lastError: null },
    effects,
  };
}

function onCompletion(state: SuggestionState, event: CompletionEvent): Step {
  const pending = state.pending;
  // Events of superseded requests may still be on their way: only the latest request counts.
  if (!pending || event.requestId !== pending.id) return same(state);
  const s = state.suggestion;
  switch (event.type) {
    case 'delta': {
      if (pending.purpose !== 'inline' || !s) return same(state);
      const raws = s.raws.slice();
      raws[event.alternative] = (raws[event.alternative] ?? '') + event.text;
      for (let i = 0; i < raws.length; i++) raws[i] ??= '';
      return same({ ...state, suggestion: { ...s, raws } });
    }
    case 'done': {
      const next = { ...state, pending: null, lastLatencyMs: event.latencyMs, lastError: null };
      if (!s) return same(next);
      if (pending.purpose === 'alternatives') return same(withAlternatives(next, s, event.alternatives, pending.direction));
      const raws = event.alternatives.length > 0 ? event.alternatives.slice() : s.raws;
      return finish(next, { ...s, raws, index: Math.max(0, Math.min(s.index, raws.length - 1)), streaming: false });
    }
    case 'cancelled':
      return endStream(state, null);
    case 'error':
      return endStream(state, event.error.message);
  }
}

/** The stream stopped early: keep what arrived, if it is worth showing. */
function endStream(state: SuggestionState, error: string | null): Step {
  const next = { ...state, pending: null, lastError: error };
  return state.suggestion ? finish(next, { ...state.suggestion, streaming: false }) : same(next);
}

/** Settles a finished suggestion: shown if something is left to show, otherwise gone. */
function finish(state: SuggestionState, s: Suggestion): Step {
  const next = { ...state, suggestion: s };
  if (visibleSuggestion(next) !== '') return same(next);
  // Typed through everything before the stream ended: ask again after a pause.
  if (s.typed !== '') return schedule({ ...state, suggestion: null }, suggestionCaret(s));
  return same({ ...state, suggestion: null });
}

function withAlternatives(state: SuggestionState, s: Suggestion, fetched: string[], direction: 1 | -1): SuggestionState {
  const current = s.raws[s.index];
  const candidates = current === undefined ? fetched : [current, ...fetched];
  const seen = new Set<string>();
  const raws: string[] = [];
  for (const raw of candidates) {
    const shown = remainderOf(s, raw, state.settings, true);
    if (shown === '' || seen.has(shown)) continue;
    seen.add(shown);
    raws.push(raw);
  }
  if (raws.length === 0) return { ...state, suggestion: null };
  const hadCurrent = current !== undefined && raws[0] === current;
  const index = !hadCurrent || raws.length === 1 ? 0 : direction > 0 ? 1 : raws.length - 1;
  return { ...state, suggestion: { ...s, raws, index, streaming: false, alternativesFetched: true } };
}

function onCycle(state: SuggestionState, direction: 1 | -1, editor: EditorSnapshot): Step {
  const s = state.suggestion;
  if (s && s.alternativesFetched) {
    if (s.raws.length < 2) return same(state);
    const index = (s.index + direction + s.raws.length) % s.raws.length;
    return same({ ...state, suggestion: { ...s, index } });
  }
  if (state.pending?.purpose === 'alternatives') return same(state);
  const n = Math.max(2, state.settings.numAlternatives);
  if (s && visibleSuggestion(state) !== '') {
    // Ask for alternatives at the same anchor (the text before it is unchanged), keeping the current one
    // shown meanwhile and first in the list.
    const atAnchor: EditorSnapshot = { text: editor.text, caret: s.anchor, collapsed: true };
    const sent = request(state, atAnchor, 'alternatives', n, direction);
    const frozen: Suggestion = { ...s, raws: [s.raws[s.index] ?? ''], index: 0, streaming: false };
    return { state: { ...sent.state, suggestion: frozen }, effects: sent.effects };
  }
  if (!editor.collapsed || !isCompletionPoint(editor.text, editor.caret)) return same(state);
  return request(state, editor, 'alternatives', n, direction);
}

/** What the rest of the window shows about suggestions (status bar). */
export interface SuggestionInfo {
  showing: boolean;
  waiting: boolean;
  latencyMs: number | null;
  error: string | null;
  alternatives: { index: number; count: number } | null;
}

export function suggestionInfo(state: SuggestionState): SuggestionInfo {
  return {
    showing: visibleSuggestion(state) !== '',
    waiting: state.pending !== null,
    latencyMs: state.lastLatencyMs,
    error: state.lastError,
    alternatives: alternativesInfo(state),
  };
}
