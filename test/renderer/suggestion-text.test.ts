import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_PREFIX_CHARS,
  PREFIX_ALIGN_CHARS,
  cleanSuggestion,
  cutAtSentenceEnd,
  isCompletionPoint,
  nextWordLength,
  promptPrefix,
  promptStart,
} from '../../renderer/src/lib/suggestion-text.js';

const done = { stopAtSentenceEnd: true, final: true };
const streaming = { stopAtSentenceEnd: true, final: false };

test('completion points: the end of a line (spaces may follow); not mid-line, not in an empty document', () => {
  assert.equal(isCompletionPoint('Hello there', 11), true);
  assert.equal(isCompletionPoint('Hello\nworld', 5), true);
  assert.equal(isCompletionPoint('Hello  \nworld', 5), true);
  assert.equal(isCompletionPoint('Hello world', 5), false, 'the ghost would cover " world"');
  assert.equal(isCompletionPoint('Hello world', 3), false);
  assert.equal(isCompletionPoint('', 0), false);
  assert.equal(isCompletionPoint('   ', 3), false);
  assert.equal(isCompletionPoint('abc', 0), false);
});

test('the prompt is the whole text before the caret while it is short', () => {
  assert.equal(promptPrefix('Once upon a time there', 16), 'Once upon a time');
});

test('a long prompt starts on a word at an aligned offset that does not move while typing', () => {
  const text = 'word '.repeat(10_000);
  const caret = 40_000;
  const start = promptStart(text, caret);
  assert.ok(caret - start <= MAX_PREFIX_CHARS, 'no more than the cap');
  assert.ok(caret - start > MAX_PREFIX_CHARS - PREFIX_ALIGN_CHARS, 'not much less than the cap');
  assert.equal(text[start - 1], ' ', 'starts right after a space');
  assert.equal(promptStart(text, caret + 7), start, 'stable while the caret moves a little');
  assert.equal(promptPrefix(text, caret), text.slice(start, caret));
});

test('leading spaces are dropped when the text before already ends in a space or a line start', () => {
  assert.equal(cleanSuggestion('  quick fox', 'The ', done), 'quick fox');
  assert.equal(cleanSuggestion(' quick fox', '', done), 'quick fox');
  assert.equal(cleanSuggestion(' quick fox', 'Title\n', done), 'quick fox');
  assert.equal(cleanSuggestion(' quick fox', 'The', done), ' quick fox');
});

test('words just written are not repeated', () => {
  assert.equal(cleanSuggestion('the store', 'I went to the ', done), 'store');
  assert.equal(cleanSuggestion(' the store', 'I went to the', done), ' store');
  assert.equal(cleanSuggestion('to the store', 'I went to the ', done), 'store');
  // A word that only starts like the last one is not a repeat.
  assert.equal(cleanSuggestion('theatre', 'I went to the ', done), 'theatre');
  assert.equal(cleanSuggestion(' then left', 'I went to the', done), ' then left');
});

test('a possible repeat is held back while streaming, then shown once decided', () => {
  assert.equal(cleanSuggestion(' th', 'I went to the', streaming), '');
  assert.equal(cleanSuggestion(' the', 'I went to the', streaming), '');
  assert.equal(cleanSuggestion(' the shop', 'I went to the', streaming), ' shop');
  assert.equal(cleanSuggestion(' thence', 'I went to the', streaming), ' thence');
});

test('streamed text only grows as more arrives', () => {
  const before = 'She opened the door and';
  const full = ' walked into the garden. It was late.';
  let last = '';
  for (let i = 1; i <= full.length; i++) {
    const shown = cleanSuggestion(full.slice(0, i), before, streaming);
    assert.ok(shown.startsWith(last), `"${shown}" should extend "${last}"`);
    last = shown;
  }
  assert.equal(last, ' walked into the garden.');
});

test('cut at the first sentence end or line break when asked, not otherwise', () => {
  assert.equal(cleanSuggestion(' is here. Then more', 'It', done), ' is here.');
  assert.equal(cleanSuggestion(' is here\nNext line', 'It', done), ' is here');
  assert.equal(cleanSuggestion(' is here. Then more', 'It', { stopAtSentenceEnd: false, final: true }), ' is here. Then more');
  assert.equal(cutAtSentenceEnd('costs 3.50 dollars. Yes'), 'costs 3.50 dollars.');
  assert.equal(cutAtSentenceEnd('she said "go!" and left'), 'she said "go!"');
  assert.equal(cutAtSentenceEnd('我们走吧。然后'), '我们走吧。');
  assert.equal(cutAtSentenceEnd('Wait... what'), 'Wait...');
});

test('empty and whitespace-only suggestions are dropped', () => {
  assert.equal(cleanSuggestion('', 'Hello', done), '');
  assert.equal(cleanSuggestion('   ', 'Hello', done), '');
  assert.equal(cleanSuggestion('\n\nNew paragraph', 'End.', done), '');
  assert.equal(cleanSuggestion('the ', 'to the ', done), '');
});

test('next word: spaces, one word, glued punctuation; any script', () => {
  const s = ' store, and then';
  assert.equal(s.slice(0, nextWordLength(s)), ' store,');
  assert.equal(nextWordLength(''), 0);
  const cjk = '我们今天去公园';
  const n = nextWordLength(cjk);
  assert.ok(n > 0 && n < cjk.length, `one word of "${cjk}", got ${n}`);
  const emoji = ' 🎉 party';
  assert.equal(emoji.slice(0, nextWordLength(emoji)), ' 🎉');
});
