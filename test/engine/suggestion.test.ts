import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SuggestionStream, sentenceEndIndex, shapeSuggestion } from '../../worker/suggestion.js';

const cut = { stopAtSentenceEnd: true, afterSpace: false };
const raw = { stopAtSentenceEnd: false, afterSpace: false };

test('a suggestion stops after the first sentence end, keeping its punctuation', () => {
  assert.deepEqual(shapeSuggestion(' went home. Then he slept', cut), { text: ' went home.', ended: true });
  assert.deepEqual(shapeSuggestion(' is it? Yes', cut), { text: ' is it?', ended: true });
  assert.deepEqual(shapeSuggestion(' she said." And then', cut), { text: ' she said."', ended: true });
});

test('abbreviations and initials do not end a sentence', () => {
  assert.deepEqual(shapeSuggestion(' Mr. Smith and Dr. Who met', cut), { text: ' Mr. Smith and Dr. Who met', ended: false });
  assert.equal(sentenceEndIndex('J. K. Rowling wrote it. Then'), 'J. K. Rowling wrote it.'.length);
  assert.equal(sentenceEndIndex('see e.g. the U.S. report'), -1);
  assert.equal(sentenceEndIndex('it costs 3.5 dollars'), -1);
});

test('a period with nothing after it may still be an abbreviation: not ended yet', () => {
  assert.deepEqual(shapeSuggestion(' the end.', cut), { text: ' the end.', ended: false });
});

test('a line break ends the suggestion; trailing whitespace is trimmed', () => {
  assert.deepEqual(shapeSuggestion(' first line  \nsecond', cut), { text: ' first line', ended: true });
  assert.deepEqual(shapeSuggestion(' words  ', raw), { text: ' words', ended: false });
  assert.deepEqual(shapeSuggestion(' a. b\nc', raw), { text: ' a. b\nc', ended: false });
});

test('after a prefix that ends in a space, the leading space is dropped', () => {
  assert.equal(shapeSuggestion(' world', { stopAtSentenceEnd: false, afterSpace: true }).text, 'world');
  assert.equal(shapeSuggestion(' world', raw).text, ' world');
});

test('streamed deltas add up to the final suggestion and stop once it ended', () => {
  const pieces = [' The', ' cat', ' sat', ' ', ' on', ' Mr', '.', ' Jones', "'s", ' mat', '.', ' It', ' purred'];
  const stream = new SuggestionStream(cut);
  let shown = '';
  let soFar = '';
  for (const piece of pieces) {
    soFar += piece;
    const delta = stream.update(soFar);
    shown += delta;
    assert.ok(!/\s$/.test(shown), `shown text never ends in whitespace: ${JSON.stringify(shown)}`);
  }
  assert.equal(shown, " The cat sat  on Mr. Jones's mat.");
  assert.equal(stream.text, shown);
  assert.equal(stream.ended, true);
  assert.equal(shapeSuggestion(soFar, cut).text, shown);
});
