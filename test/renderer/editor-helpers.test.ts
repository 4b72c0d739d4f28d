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
