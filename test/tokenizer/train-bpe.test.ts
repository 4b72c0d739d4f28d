import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer, tokenizerFromVocabMerges } from '../../worker/tokenizer/index.js';
import { ENDOFTEXT, countWords, trainBpe, trainBpeOnTexts, writeBpeFiles } from '../../worker/tokenizer/train-bpe.js';
import { randomText, seededRandom } from './random-text.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const corpus = path.resolve(repoRoot, '..', 'shared', 'corpus');
const book = (name: string) => gunzipSync(readFileSync(path.join(corpus, `${name}.txt.gz`))).toString('utf8');

const training = [book('carroll-alice-in-wonderland'), book('dickens-a-christmas-carol')];
const trained = trainBpeOnTexts(training, { vocabSize: 1024 });
const tok = tokenizerFromVocabMerges(trained.vocab, trained.merges);

test('the vocabulary has the asked size, the 256 bytes first and <|endoftext|> last', () => {
  assert.equal(trained.vocabSize, 1024);
  assert.equal(Object.keys(trained.vocab).length, 1024);
  assert.equal(trained.vocab[ENDOFTEXT], 1023);
  assert.equal(tok.eosTokenId, 1023);
  assert.equal(tok.vocabSize, 1024);
  assert.equal(new Set(Object.values(trained.vocab)).size, 1024);
  // The most frequent pair of English prose in GPT-2's alphabet: a space before "t" (or "h e").
  assert.ok(['Ġ t', 'h e'].includes(trained.merges[0]), trained.merges[0]);
});

test('random Unicode text and edge cases round-trip through the trained vocabulary', () => {
  const random = seededRandom(99);
  const encoder = new TextEncoder();
  const cases = ['', ' ', 'aaaa aaaa', '\n\n\n', "DON'T", 'the the the', '日本語 😀 👨‍👩‍👧‍👦', '\u0085\ufeff', 'x'.repeat(500)];
  for (let i = 0; i < 1000; i++) cases.push(randomText(random, i < 950 ? 30 : 300));
  for (const text of cases) {
    const ids = tok.encode(text);
    assert.equal(tok.decode(ids), text, JSON.stringify(text));
    assert.deepEqual(ids.flatMap((id) => [...tok.tokenBytes(id)]), [...encoder.encode(text)], JSON.stringify(text));
  }
});

test('training is deterministic and independent of the order of the words', () => {
  const again = trainBpeOnTexts(training, { vocabSize: 1024 });
  assert.deepEqual(again.merges, trained.merges);
  assert.deepEqual(again.vocab, trained.vocab);
  const counts = countWords(training.join('\n'));
  const reversed = new Map([...counts].reverse());
  const fromReversed = trainBpe(reversed, { vocabSize: 1024 });
  assert.deepEqual(fromReversed.merges, trained.merges);
});

test('it compresses unseen English prose far better than bytes', () => {
  const unseen = book('stevenson-jekyll-and-hyde');
  const ids = tok.encode(unseen);
  assert.equal(tok.decode(ids), unseen);
  const bytesPerToken = Buffer.byteLength(unseen) / ids.length;
  assert.ok(bytesPerToken > 2.5, `only ${bytesPerToken.toFixed(2)} bytes per token`);
});

test('merges of a hand-checked corpus', () => {
  // "aaa" ×3: the pair (a,a) counts twice per word but merges once, leaving "aa a".
  const small = trainBpe(new Map([['aaa', 3], [' ab', 1]]), { vocabSize: 300 });
  assert.deepEqual(small.merges, ['a a', 'aa a']);
  assert.equal(small.vocabSize, 259); // nothing else occurs twice
  assert.throws(() => trainBpe(new Map(), { vocabSize: 100 }), /vocabSize/);
});

test('written files load back with loadTokenizer', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bpe-'));
  try {
    await writeBpeFiles(dir, trained);
    assert.match(await readFile(path.join(dir, 'merges.txt'), 'utf8'), /^#version: 0\.2\n/);
    const loaded = await loadTokenizer(dir);
    const text = training[0].slice(0, 5000);
    assert.deepEqual(loaded.encode(text), tok.encode(text));
    assert.equal(loaded.eosTokenId, 1023);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
