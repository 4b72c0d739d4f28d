import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';
import { gpt2Tokenizer, pretokenize } from '../../worker/tokenizer/index.js';
import { randomText, seededRandom } from './random-text.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const shared = path.resolve(repoRoot, '..', 'shared');
const cases: Array<{ text: string; ids: number[] }> = JSON.parse(
  readFileSync(path.join(shared, 'fixtures', 'tokenizer', 'cases.json'), 'utf8'),
);

const tok = gpt2Tokenizer();
const utf8 = (s: string) => new TextEncoder().encode(s);

test('every fixture case encodes to GPT-2 ids and decodes back', () => {
  assert.ok(cases.length >= 40);
  for (const { text, ids } of cases) {
    assert.deepEqual(tok.encode(text), ids, `encode ${JSON.stringify(text)}`);
    assert.equal(tok.decode(ids), text, `decode ${JSON.stringify(text)}`);
  }
});

test('vocabulary shape and the shared instance', () => {
  assert.equal(tok.vocabSize, 50257);
  assert.equal(tok.eosTokenId, 50256);
  assert.equal(gpt2Tokenizer(), tok);
  assert.deepEqual(tok.encode('Hello'), [15496]);
  assert.deepEqual(tok.encode(''), []);
});

test('<|endoftext|> is text unless allowSpecial', () => {
  assert.deepEqual(tok.encode('<|endoftext|>'), [27, 91, 437, 1659, 5239, 91, 29]);
  assert.deepEqual(tok.encode('<|endoftext|>', { allowSpecial: false }), [27, 91, 437, 1659, 5239, 91, 29]);
  assert.deepEqual(tok.encode('<|endoftext|>', { allowSpecial: true }), [50256]);
  const mixed = 'Text before <|endoftext|> text after';
  const parts = [...tok.encode('Text before '), 50256, ...tok.encode(' text after')];
  assert.deepEqual(tok.encode(mixed, { allowSpecial: true }), parts);
  assert.deepEqual(tok.encode('<|endoftext|><|endoftext|>x', { allowSpecial: true }), [50256, 50256, 87]);
  assert.equal(tok.decode([50256]), '<|endoftext|>');
  assert.equal(tok.decode(parts), mixed);
});

test('tokenBytes gives raw token bytes that concatenate to the UTF-8 text', () => {
  assert.deepEqual([...tok.tokenBytes(198)], [10]);
  assert.deepEqual([...tok.tokenBytes(220)], [32]);
  assert.deepEqual([...tok.tokenBytes(50256)], [...utf8('<|endoftext|>')]);
  const text = '今天天气很好 🏳️‍🌈 café';
  const joined = tok.encode(text).flatMap((id) => [...tok.tokenBytes(id)]);
  assert.deepEqual(joined, [...utf8(text)]);
  // A caller scribbling on the returned bytes must not change the vocabulary.
  tok.tokenBytes(15496).fill(0);
  assert.equal(tok.decode([15496]), 'Hello');
});

test('out-of-range ids throw a RangeError naming the id', () => {
  for (const id of [50257, -1, 1.5, Number.NaN, 1e9]) {
    assert.throws(() => tok.decode([15496, id]), (e: Error) => e instanceof RangeError && e.message.includes(String(id)));
    assert.throws(() => tok.tokenBytes(id), RangeError);
  }
});

test('byte sequences that are not UTF-8 decode to U+FFFD as Python errors="replace" does', () => {
  const byteToken = new Map<number, number>();
  for (let id = 0; id < 50256; id++) {
    const b = tok.tokenBytes(id);
    if (b.length === 1) byteToken.set(b[0], id);
  }
  assert.equal(byteToken.size, 256);
  const decodeBytes = (bytes: number[]) => tok.decode(bytes.map((b) => byteToken.get(b)!));
  // Expected strings computed with CPython's bytes.decode('utf-8', 'replace').
  assert.equal(decodeBytes([0xe4]), '\ufffd');
  assert.equal(decodeBytes([0xe4, 0x61]), '\ufffda');
  assert.equal(decodeBytes([0xe4, 0xbb]), '\ufffd');
  assert.equal(decodeBytes([0x80, 0x80]), '\ufffd\ufffd');
  assert.equal(decodeBytes([0xf0, 0x9f, 0x98]), '\ufffd');
  assert.equal(decodeBytes([0xff, 0xfe]), '\ufffd\ufffd');
  assert.equal(decodeBytes([0xed, 0xa0, 0x80]), '\ufffd\ufffd\ufffd');
  // A leading byte-order mark is text, not something for the decoder to swallow.
  assert.equal(tok.decode(tok.encode('\ufeffHello')), '\ufeffHello');
});

test('pre-tokenizer uses Unicode White_Space like GPT-2, not JavaScript \\s', () => {
  // Expected pieces computed with Python's `regex` module and GPT-2's pattern.
  const expected: Array<[string, string[]]> = [
    ['a \u0085b', ['a', ' ', '\u0085', 'b']],
    ['\u0085 \u0085x', ['\u0085 ', '\u0085', 'x']],
    ['x \ufeff\ufeffy', ['x', ' \ufeff\ufeff', 'y']],
    ['a\ufeff b', ['a', '\ufeff', ' b']],
    ['end\u0085\u0085', ['end', '\u0085\u0085']],
    ['x\u180ey', ['x', '\u180e', 'y']],
    ['a\u001c b', ['a', '\u001c', ' b']],
    ["DON'T you'll", ['DON', "'", 'T', ' you', "'ll"]],
  ];
  for (const [text, pieces] of expected) assert.deepEqual(pretokenize(text), pieces, JSON.stringify(text));
});

test('lone surrogates are encoded as U+FFFD (UTF-8 cannot carry them)', () => {
  for (const text of ['a\ud800b', 'x\udfff', '\ud83d']) {
    const replaced = text.replace(/[\ud800-\udfff]/g, '\ufffd');
    assert.deepEqual(tok.encode(text), tok.encode(replaced));
    assert.equal(tok.decode(tok.encode(text)), replaced);
  }
});

test('agrees with js-tiktoken on random Unicode text and on a novel', () => {
  const reference = new Tiktoken(gpt2Ranks);
  // js-tiktoken's pattern uses JavaScript's \s, so the two characters where that differs from
  // GPT-2's White_Space are left out of this comparison (tested above instead).
  const comparable = (s: string) => s.replace(/[\u0085\ufeff]/g, '');
  const seed = 20240601;
  const random = seededRandom(seed);
  for (let i = 0; i < 400; i++) {
    const text = comparable(randomText(random, 40));
    assert.deepEqual(tok.encode(text), reference.encode(text), `seed ${seed}, string ${i}: ${JSON.stringify(text)}`);
  }
  // Long pieces take the heap merge path: a run of Chinese letters, digits, symbols.
  const long = '天气很好阳光明媚'.repeat(30) + ' ' + '1234567890'.repeat(20) + ' ' + '=-'.repeat(100) + '😀'.repeat(40);
  assert.deepEqual(tok.encode(long), reference.encode(long));
  const novel = gunzipSync(readFileSync(path.join(shared, 'corpus', 'austen-emma.txt.gz'))).toString('utf8');
  const chunk = comparable(novel.slice(100_000, 160_000));
  assert.deepEqual(tok.encode(chunk), reference.encode(chunk));
});
