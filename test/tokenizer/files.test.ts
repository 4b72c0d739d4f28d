import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BYTE_TO_CHAR } from '../../worker/tokenizer/bytes.js';
import {
  TokenizerFormatError,
  gpt2Tokenizer,
  gpt2VocabMerges,
  loadTokenizer,
  tokenizerFromVocabMerges,
} from '../../worker/tokenizer/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const shared = path.resolve(repoRoot, '..', 'shared');

/** A tiny byte-level vocabulary: the 256 bytes (ids 0..255 in byte order), then a few merges. */
function tinyVocab(): { vocab: Record<string, number>; merges: string[] } {
  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((ch, byte) => (vocab[ch] = byte));
  const merges = ['h e', 'Ġ t', 'Ġt he', 'a t', 'c at', 'Ġ cat'];
  for (const [i, merge] of merges.entries()) vocab[merge.replace(' ', '')] = 256 + i;
  vocab['<|endoftext|>'] = 262;
  return { vocab, merges };
}

function tempDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'inkling-tok-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

// Ids of the tiny vocabulary: bytes 0..255 in byte order ('Ġ', the space, is 32), then
// he 256, Ġt 257, Ġthe 258, at 259, cat 260, Ġcat 261, <|endoftext|> 262.

test('a vocab.json + merges.txt folder gives its own encoding', async () => {
  const { vocab, merges } = tinyVocab();
  const dir = tempDir({
    'vocab.json': JSON.stringify(vocab),
    'merges.txt': ['#version: 0.2', ...merges, ''].join('\n'),
  });
  try {
    const tok = await loadTokenizer(dir);
    assert.equal(tok.vocabSize, 263);
    assert.equal(tok.eosTokenId, 262);
    assert.deepEqual(tok.encode('the cat'), [116, 256, 261]);
    // ' sat' → 'Ġ' (byte 0x20 → id 32), 's', 'at'
    assert.deepEqual(tok.encode(' the cat sat'), [258, 261, 32, 115, 259]);
    assert.deepEqual(tok.encode('hehe'), [256, 256]);
    assert.deepEqual(tok.encode('<|endoftext|>', { allowSpecial: true }), [262]);
    assert.ok(!tok.encode('<|endoftext|>').includes(262));
    assert.equal(tok.decode(tok.encode('<|endoftext|>')), '<|endoftext|>');
    assert.equal(tok.decode([258, 261, 262]), ' the cat<|endoftext|>');
    assert.equal(tok.decode(tok.encode('Ünïcödé 😀 text')), 'Ünïcödé 😀 text');
    assert.throws(() => tok.decode([263]), RangeError);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('a tokenizer.json folder gives the same encoding as its vocab and merges', async () => {
  const { vocab, merges } = tinyVocab();
  const json = {
    version: '1.0',
    added_tokens: [{ id: 262, content: '<|endoftext|>', special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', vocab, merges: merges.map((m) => m.split(' ')) },
  };
  const dir = tempDir({ 'tokenizer.json': JSON.stringify(json) });
  try {
    const tok = await loadTokenizer(dir);
    assert.deepEqual(tok.encode(' the cat sat'), [258, 261, 32, 115, 259]);
    assert.deepEqual(tok.encode('a<|endoftext|>', { allowSpecial: true }), [97, 262]);
    assert.equal(tok.eosTokenId, 262);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('a folder without tokenizer files uses GPT-2', async () => {
  const dir = tempDir({ 'config.json': '{}' });
  try {
    assert.equal(await loadTokenizer(dir), gpt2Tokenizer());
    assert.equal(await loadTokenizer(path.join(shared, 'fixtures', 'tiny-gpt2')), gpt2Tokenizer());
  } finally {
    rmSync(dir, { recursive: true });
  }
  await assert.rejects(loadTokenizer(path.join(dir, 'missing')), /does not exist/);
});

test('GPT-2 exported as vocab.json + merges.txt encodes the fixture cases identically', async () => {
  const { vocab, merges } = gpt2VocabMerges();
  assert.equal(Object.keys(vocab).length, 50257);
  assert.equal(merges.length, 50000);
  // The opening of GPT-2's published merges.txt.
  assert.deepEqual(merges.slice(0, 7), ['Ġ t', 'Ġ a', 'h e', 'i n', 'r e', 'o n', 'Ġt he']);
  const dir = tempDir({
    'vocab.json': JSON.stringify(vocab),
    'merges.txt': ['#version: 0.2', ...merges].join('\n') + '\n',
  });
  try {
    const fromFiles = await loadTokenizer(dir);
    assert.notEqual(fromFiles, gpt2Tokenizer());
    assert.equal(fromFiles.eosTokenId, 50256);
    const cases: Array<{ text: string; ids: number[] }> = JSON.parse(
      readFileSync(path.join(shared, 'fixtures', 'tokenizer', 'cases.json'), 'utf8'),
    );
    for (const { text, ids } of cases) {
      assert.deepEqual(fromFiles.encode(text), ids, JSON.stringify(text));
      assert.equal(fromFiles.decode(ids), text);
    }
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('malformed files fail with errors that name the file and the problem', async () => {
  const { vocab, merges } = tinyVocab();
  const good = { vocab: JSON.stringify(vocab), merges: merges.join('\n') };
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ 'vocab.json': '{"a": 1,', 'merges.txt': good.merges }, /vocab\.json is not valid JSON/],
    [{ 'vocab.json': '[1, 2]', 'merges.txt': good.merges }, /vocab\.json must be an object/],
    [{ 'vocab.json': JSON.stringify({ ...vocab, x1: 'one' }), 'merges.txt': good.merges }, /"x1" has id "one"/],
    [{ 'vocab.json': JSON.stringify({ ...vocab, dup: 5 }), 'merges.txt': good.merges }, /both have id 5/],
    [{ 'vocab.json': JSON.stringify({ ...vocab, 'bad token': 300 }), 'merges.txt': good.merges }, /"bad token" \(id 300\).*byte-level/],
    [{ 'vocab.json': JSON.stringify(Object.fromEntries(Object.entries(vocab).filter(([, id]) => id !== 65))), 'merges.txt': good.merges }, /no token "A" for byte 0x41/],
    [{ 'vocab.json': good.vocab, 'merges.txt': 'h e\nĠ t x\n' }, /merges\.txt line 2: expected two tokens/],
    [{ 'vocab.json': good.vocab, 'merges.txt': 'h e\n\nq zz\n' }, /merges\.txt line 3: "zz" .*is not in .*vocab\.json/],
    [{ 'vocab.json': good.vocab, 'merges.txt': 'h e\nx y\n' }, /merges\.txt line 2: "xy" .*is not in/],
    [{ 'vocab.json': good.vocab }, /vocab\.json has no merges\.txt/],
    [{ 'merges.txt': good.merges }, /merges\.txt has no vocab\.json/],
    [{ 'tokenizer.json': '{"model": {"type": "WordPiece", "vocab": {}}}' }, /tokenizer\.json: model type "WordPiece" is not supported/],
    [{ 'tokenizer.json': JSON.stringify({ model: { type: 'BPE', vocab, merges: [] }, pre_tokenizer: { type: 'Whitespace' } }) }, /pre_tokenizer .* is not supported/],
    [{ 'tokenizer.json': JSON.stringify({ model: { type: 'BPE', vocab }, pre_tokenizer: { type: 'ByteLevel' } }) }, /model\.merges must be an array/],
  ];
  for (const [files, message] of cases) {
    const dir = tempDir(files);
    try {
      await assert.rejects(loadTokenizer(dir), (e: Error) => {
        assert.ok(e instanceof TokenizerFormatError, `${e.name}: ${e.message}`);
        assert.match(e.message, message);
        const name = Object.keys(files).find((f) => e.message.includes(f));
        assert.ok(name && e.message.includes(dir), `the message names the file: ${e.message}`);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true });
    }
  }
  assert.throws(() => tokenizerFromVocabMerges(vocab, ['h e', 'h']), /merges line 2: expected two tokens/);
});
