import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gpt2Tokenizer } from '../../worker/tokenizer/index.js';
import { randomText, seededRandom } from './random-text.js';

const tok = gpt2Tokenizer();
const encoder = new TextEncoder();

// Any well-formed string round-trips. Lone surrogates are the exception by design: UTF-8 cannot
// represent them, so encode() writes U+FFFD for each (as TextEncoder does); see gpt2.test.ts.
test('random Unicode text round-trips through encode and decode', () => {
  const seed = Number(process.env.TOKENIZER_SEED ?? 1234);
  const random = seededRandom(seed);
  for (let i = 0; i < 2000; i++) {
    const text = randomText(random, i < 1900 ? 30 : 400);
    const ids = tok.encode(text);
    const where = `seed ${seed}, string ${i}: ${JSON.stringify(text)}`;
    assert.equal(tok.decode(ids), text, where);
    const bytes = ids.flatMap((id) => [...tok.tokenBytes(id)]);
    assert.deepEqual(bytes, [...encoder.encode(text)], where);
    assert.ok(ids.every((id) => id !== tok.eosTokenId), where);
  }
});

test('whitespace runs and line endings round-trip exactly', () => {
  const pieces = [' ', '\t', '\n', '\r\n', '\r', '\u00a0', '\u3000', '\u0085', '\ufeff', 'x', '日'];
  const random = seededRandom(42);
  for (let i = 0; i < 500; i++) {
    let text = '';
    for (let j = Math.floor(random() * 20); j > 0; j--) text += pieces[Math.floor(random() * pieces.length)];
    assert.equal(tok.decode(tok.encode(text)), text, `seed 42, string ${i}: ${JSON.stringify(text)}`);
  }
});
