import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandForKey, isMacPlatform, type KeyPress } from '../../renderer/src/lib/editor-keys.js';
import { countWords } from '../../renderer/src/lib/word-count.js';
import { relativeTime, formatLatency } from '../../renderer/src/lib/format.js';
import { apiSocketUrl } from '../../renderer/src/lib/api.js';

const key = (k: Partial<KeyPress>): KeyPress => ({
  key: '',
  code: '',
  ctrlKey: false,
  metaKey: false,
  altKey: false,
  shiftKey: false,
  ...k,
});

test('suggestion shortcuts on Linux/Windows and on a Mac', () => {
  assert.equal(commandForKey(key({ key: 'Tab', code: 'Tab' }), false), 'acceptAll');
  assert.equal(commandForKey(key({ key: 'Tab', shiftKey: true }), false), null);
  assert.equal(commandForKey(key({ key: 'Escape' }), false), 'dismiss');
  assert.equal(commandForKey(key({ key: 'ArrowRight', ctrlKey: true }), false), 'acceptWord');
  assert.equal(commandForKey(key({ key: 'ArrowRight', ctrlKey: true }), true), null);
  assert.equal(commandForKey(key({ key: 'ArrowRight', metaKey: true }), true), 'acceptWord');
  assert.equal(commandForKey(key({ key: 'ArrowRight', ctrlKey: true, shiftKey: true }), false), null, 'Ctrl+Shift+→ still selects');
  assert.equal(commandForKey(key({ key: '‘', code: 'BracketRight', altKey: true }), true), 'next');
  assert.equal(commandForKey(key({ key: '[', code: 'BracketLeft', altKey: true }), false), 'previous');
  assert.equal(commandForKey(key({ key: ' ', code: 'Space', ctrlKey: true }), false), 'requestNow');
  assert.equal(commandForKey(key({ key: 'Tab', isComposing: true }), false), null);
  assert.equal(isMacPlatform('MacIntel'), true);
  assert.equal(isMacPlatform('Linux x86_64'), false);
});

test('word count in several scripts', () => {
  assert.equal(countWords(''), 0);
  assert.equal(countWords('  Hello,   world!  '), 2);
  assert.equal(countWords("don't stop — now"), 3);
  assert.equal(countWords('我们今天去公园'), 7);
  assert.equal(countWords('Hello 世界'), 3);
  assert.equal(countWords('שלום עולם'), 2);
  assert.equal(countWords('🎉 🎉'), 0);
  assert.equal(countWords('version 2.0 is out'), 4);
});

test('relative times and latencies', () => {
  const now = Date.UTC(2025, 5, 15, 12);
  assert.equal(relativeTime(now - 5_000, now), 'just now');
  assert.equal(relativeTime(now - 5 * 60_000, now), '5 min ago');
  assert.equal(relativeTime(now - 3 * 3_600_000, now), '3 h ago');
  assert.equal(relativeTime(now - 30 * 3_600_000, now), 'yesterday');
  assert.match(relativeTime(now - 10 * 86_400_000, now), /^Jun \d+$/);
  assert.equal(formatLatency(87.4), '87 ms');
  assert.equal(formatLatency(1530), '1.5 s');
});

test('browser-mode API URL carries the page token; a missing token is a clear error', () => {
  assert.equal(
    apiSocketUrl({ protocol: 'http:', host: '127.0.0.1:5173', search: '?token=a%2Bb' }),
    'ws://127.0.0.1:5173/api?token=a%2Bb',
  );
  assert.throws(() => apiSocketUrl({ protocol: 'http:', host: 'x', search: '' }), /token/);
  assert.throws(() => apiSocketUrl({ protocol: 'file:', host: '', search: '' }), /file:/);
});

test('settings patches merge field by field, decoding included; suggestions wait for a ready engine', async () => {
  const { applyPatch, mergePatches, suggestionSettings } = await import('../../renderer/src/lib/settings.js');
  const merged = mergePatches({ decoding: { topK: 5 }, suggestionDelayMs: 100 }, { decoding: { topP: 0.5 } });
  assert.deepEqual(merged, { suggestionDelayMs: 100, decoding: { topK: 5, topP: 0.5 } });
  const base = {
    decoding: { temperature: 1, topK: 40, topP: 1, repetitionPenalty: 1, noRepeatNgramSize: 0, maxNewTokens: 8, numAlternatives: 3, doSample: true },
    suggestionDelayMs: 400,
    stopAtSentenceEnd: true,
    suggestionsEnabled: true,
    checkForUpdates: false,
    toneLabels: ['formal', 'casual'],
    toneTemplate: 'Text: {text}\nTone:',
    toneCalibrate: true,
    precision: 'exact' as const,
  };
  const applied = applyPatch(base, merged);
  assert.equal(applied.decoding.temperature, 1);
  assert.equal(applied.decoding.topK, 5);
  assert.equal(applied.suggestionDelayMs, 100);
  assert.equal(base.decoding.topK, 40, 'the original is not changed');
  assert.equal(suggestionSettings(base, false).enabled, false);
  assert.equal(suggestionSettings(base, true).enabled, true);
  assert.equal(suggestionSettings({ ...base, suggestionsEnabled: false }, true).enabled, false);
});

test('status words for the engine and for saving', async () => {
  const { backendText, engineText, saveText } = await import('../../renderer/src/lib/status.js');
  const engine = { state: 'error' as const, backend: 'wasm', backendReason: '', modelName: 'gpt2', error: { code: 'LOAD', message: 'weights file is truncated' } };
  assert.deepEqual(engineText(engine).tone, 'error');
  assert.match(engineText(engine).label, /weights file is truncated/);
  assert.equal(engineText({ ...engine, state: 'loading', error: null }).label, 'Loading model…');
  assert.equal(engineText(null).tone, 'busy');
  const ready = { ...engine, state: 'ready' as const, backendReason: 'tfjs-node is not installed: using WebAssembly', error: null };
  assert.equal(backendText(ready).label, 'wasm', 'threads not reported (yet): the backend alone');
  assert.deepEqual(backendText({ ...ready, threads: 2, threadsNote: null }), { label: 'wasm · 2 threads', detail: 'tfjs-node is not installed: using WebAssembly' });
  const one = backendText({ ...ready, backend: 'cpu', backendReason: 'asked for', threads: 1, threadsNote: 'the cpu backend schedules its own threads' });
  assert.equal(one.label, 'cpu · 1 thread');
  assert.match(one.detail, /^asked for; one thread: the cpu backend schedules its own threads$/);
  assert.equal(backendText(null).label, '—');
  assert.equal(backendText({ ...engine, state: 'starting', backend: '', error: null }).label, '—');
  // The precision follows the threads; the tooltip says why exact when fast was asked for.
  assert.deepEqual(backendText({ ...ready, threads: 2, threadsNote: null, precision: 'fast', precisionNote: null }), {
    label: 'wasm · 2 threads · fast',
    detail: 'tfjs-node is not installed: using WebAssembly',
  });
  const exact = backendText({ ...ready, threads: 1, threadsNote: null, precision: 'exact', precisionNote: 'inDim must be a positive multiple of 32, got 40' });
  assert.equal(exact.label, 'wasm · 1 thread · exact');
  assert.equal(exact.detail, 'tfjs-node is not installed: using WebAssembly; exact, not fast: inDim must be a positive multiple of 32, got 40');
  const both = backendText({ ...ready, backend: 'cpu', backendReason: 'asked for', threads: 1, threadsNote: 'the cpu backend schedules its own threads', precision: 'exact', precisionNote: 'the cpu backend runs its own kernels' });
  assert.equal(both.detail, 'asked for; one thread: the cpu backend schedules its own threads; exact, not fast: the cpu backend runs its own kernels');
  // Native prompt kernels: "AVX2" in the label; without them, the tooltip says why.
  assert.deepEqual(backendText({ ...ready, threads: 2, threadsNote: null, precision: 'exact', precisionNote: null, nativeKernels: true, nativeKernelsNote: null }), {
    label: 'wasm · 2 threads · exact · AVX2',
    detail: 'tfjs-node is not installed: using WebAssembly; prompts on native AVX2 kernels',
  });
  const noNative = backendText({ ...ready, threads: 2, threadsNote: null, nativeKernels: false, nativeKernelsNote: 'this CPU has no AVX2 and FMA' });
  assert.equal(noNative.label, 'wasm · 2 threads');
  assert.equal(noNative.detail, 'tfjs-node is not installed: using WebAssembly; prompts on WebAssembly kernels: this CPU has no AVX2 and FMA');
  assert.equal(saveText({ state: 'saving', savedAt: null, error: null }).label, 'Saving…');
  assert.match(saveText({ state: 'error', savedAt: null, error: 'disk full' }).detail, /disk full/);
});

test('suggestion speed: the choices say what they cost; the note shows only when fast was chosen and exact runs', async () => {
  const { PRECISION_CHOICES, precisionNote } = await import('../../renderer/src/lib/precision.js');
  assert.deepEqual(PRECISION_CHOICES.map((c) => c.value), ['exact', 'fast']);
  const fast = PRECISION_CHOICES.find((c) => c.value === 'fast')!;
  assert.equal(fast.label, 'Fast');
  assert.match(fast.help, /about 2× faster suggestions with int8 weights; perplexity within ~1% of exact \(measured on held-out text\)/i);
  const ready = { state: 'ready' as const, backend: 'wasm', backendReason: '', modelName: 'm', error: null };
  const note = 'inDim must be a positive multiple of 32, got 40';
  assert.equal(precisionNote('fast', { ...ready, precision: 'exact', precisionNote: note }), `Running exact: ${note}`);
  assert.equal(precisionNote('fast', { ...ready, precision: 'fast', precisionNote: null }), null);
  assert.equal(precisionNote('exact', { ...ready, precision: 'exact', precisionNote: null }), null);
  assert.equal(precisionNote('fast', { ...ready, state: 'loading', precision: 'exact', precisionNote: note }), null, 'not while it reloads');
  assert.equal(precisionNote('fast', null), null);
});
