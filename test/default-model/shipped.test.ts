// The default model this repository ships (resources/default-model, made by `npm run train:default`): it loads
// with its own tokenizer, its card states what the issue asks for, and it writes English-looking text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../worker/backend.js';
import { generate } from '../../worker/generate/index.js';
import { loadModel } from '../../worker/model/load.js';
import { loadTokenizer } from '../../worker/tokenizer/index.js';
import { defaultModelDir } from '../../main/paths.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = path.join(repoRoot, 'resources', 'default-model');

await initBackend('wasm');

test('the app, browser mode and the CLI find the shipped model where it is', () => {
  assert.equal(defaultModelDir(), dir);
});

test('the shipped default model is small, in Hugging Face layout, with a card that states its numbers', () => {
  assert.deepEqual(readdirSync(dir).sort(), ['MODEL_CARD.md', 'config.json', 'merges.txt', 'model.safetensors', 'vocab.json']);
  const bytes = readdirSync(dir).reduce((sum, f) => sum + statSync(path.join(dir, f)).size, 0);
  assert.ok(bytes < 30 * 2 ** 20, `${bytes} bytes`);
  const card = readFileSync(path.join(dir, 'MODEL_CARD.md'), 'utf8');
  for (const heading of ['## Shape', '## Tokenizer', '## Data', '## Training', '## Held-out evaluation', '## Sample continuations', '## Reproduce']) {
    assert.ok(card.includes(heading), heading);
  }
  const bpb = Number(/\*\*all\*\*.*\*\*(\d+\.\d+)\*\*/.exec(card)?.[1]);
  assert.ok(bpb > 0.5 && bpb < 3, `bits per byte ${bpb}`);
});

test('it loads with its own tokenizer and continues a sentence with words', async () => {
  const [model, tokenizer] = await Promise.all([loadModel(dir, { threads: 1 }), loadTokenizer(dir)]);
  try {
    assert.equal(tokenizer.vocabSize, model.config.vocabSize);
    const prompt = tokenizer.encode('She opened the letter and read');
    const result = await generate(model, tokenizer, prompt, { maxNewTokens: 24, doSample: false });
    const text = result.sequences[0].text;
    const words = text.match(/[A-Za-z]+/g) ?? [];
    // A model that learned English writes mostly words of letters separated by spaces, not byte soup.
    assert.ok(words.length >= 8, JSON.stringify(text));
    assert.ok(words.filter((w) => /^(the|and|a|of|to|in|was|her|he|she|it|that|his|had|not|with|for|as|but|I)$/i.test(w)).length >= 2, JSON.stringify(text));
  } finally {
    model.dispose();
  }
});
