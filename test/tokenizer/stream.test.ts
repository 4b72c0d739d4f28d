import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamingDecoder, gpt2Tokenizer } from '../../worker/tokenizer/index.js';
import { randomText, seededRandom } from './random-text.js';

const tok = gpt2Tokenizer();
/** A lone surrogate in a chunk means a character was cut in half. */
const brokenChar = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function streamAll(ids: readonly number[], decoder = new StreamingDecoder(tok)): string[] {
  const chunks = ids.map((id) => decoder.push(id));
  chunks.push(decoder.flush());
  return chunks;
}

for (const text of ['今天天气很好，阳光明媚。', 'Emoji: 😀 🎉 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 and 🧑🏿‍🚀!']) {
  test(`token by token: ${text}`, () => {
    const ids = tok.encode(text);
    // The test means something only if GPT-2 really splits characters across tokens here.
    assert.ok(ids.some((id) => tok.decode([id]).includes('\ufffd')), 'some token holds part of a character');
    const chunks = streamAll(ids);
    assert.equal(chunks.join(''), tok.decode(ids));
    assert.equal(chunks.join(''), text);
    assert.ok(chunks.includes(''), 'a token that ends mid-character yields nothing yet');
    for (const chunk of chunks) {
      assert.ok(!chunk.includes('\ufffd'), `chunk ${JSON.stringify(chunk)} has U+FFFD`);
      assert.ok(!brokenChar.test(chunk), `chunk ${JSON.stringify(chunk)} splits a surrogate pair`);
    }
  });
}

test('flush turns an unfinished character into U+FFFD and starts afresh', () => {
  const ids = tok.encode('今');
  assert.ok(ids.length > 1);
  const decoder = new StreamingDecoder(tok);
  assert.equal(decoder.push(ids[0]), '');
  assert.equal(decoder.flush(), '\ufffd');
  assert.equal(streamAll(tok.encode('ok'), decoder).join(''), 'ok');
});

test('reset drops held-back bytes', () => {
  const decoder = new StreamingDecoder(tok);
  decoder.push(tok.encode('今')[0]);
  decoder.reset();
  assert.equal(streamAll(tok.encode('好 day'), decoder).join(''), '好 day');
});

test('random token streams concatenate to the one-shot decode, U+FFFD included', () => {
  const seed = 99;
  const random = seededRandom(seed);
  const decoder = new StreamingDecoder(tok);
  for (let i = 0; i < 300; i++) {
    // Mix arbitrary ids (often invalid byte sequences) with encoded text.
    const ids =
      i % 2 === 0
        ? Array.from({ length: Math.floor(random() * 30) }, () => Math.floor(random() * tok.vocabSize))
        : tok.encode(randomText(random));
    const chunks = streamAll(ids, decoder);
    assert.equal(chunks.join(''), tok.decode(ids), `seed ${seed}, case ${i}, ids ${JSON.stringify(ids)}`);
    for (const chunk of chunks) assert.ok(!brokenChar.test(chunk), `seed ${seed}, case ${i}`);
  }
});

test('an out-of-range id throws a RangeError', () => {
  assert.throws(() => new StreamingDecoder(tok).push(50257), (e: Error) => e instanceof RangeError && /50257/.test(e.message));
});
