// Few-shot templates run as generation: the template's stop string ends the output.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../../worker/model/load.js';
import type { GPT2Model } from '../../worker/model/gpt2.js';
import { gpt2Tokenizer } from '../../worker/tokenizer/index.js';
import { BUILTIN_TEMPLATES, builtinTemplate, renderTemplate, resolveTemplate, runTemplate, validateTemplate } from '../../worker/rewrite/index.js';
import { tempDir, tinyGpt2, useWasm, writeSkewedModel } from '../classify/helpers.js';

const tokenizer = gpt2Tokenizer();
let base: GPT2Model;
let newlines: GPT2Model;
before(async () => {
  await useWasm();
  base = await loadModel(tinyGpt2);
  // A copy of the fixture that strongly prefers "\n" after anything: its first new token ends the line.
  newlines = await loadModel(await writeSkewedModel(tokenizer.encode('\n')[0], null, 30));
});
after(() => {
  base.dispose();
  newlines.dispose();
});

test('the built-in templates render the text into their last example', () => {
  for (const t of BUILTIN_TEMPLATES) validateTemplate(t, t.id);
  const prompt = renderTemplate(builtinTemplate('translate-en-fr')!, '  Good morning.\n');
  assert.ok(prompt.endsWith('\n\nEnglish: Good morning.\nFrench:'));
  assert.ok(prompt.startsWith('English: Where is the train station?\nFrench:'));
  assert.ok(builtinTemplate('translate-en-fr')!.note!.includes('GPT-2'));
});

test("a built-in template's stop string ends the output at the end of the line", async () => {
  const template = builtinTemplate('translate-en-fr')!;
  const stopped = await runTemplate(newlines, tokenizer, template, 'Good morning.', { maxNewTokens: 8 });
  assert.equal(stopped.sequences[0].finishReason, 'stop');
  assert.equal(stopped.output, '');
  assert.equal(stopped.sequences[0].ids.length, 1, 'the first "\\n" ended it');
  // The same prompt and model without that stop string run on to the length limit, newlines and all.
  const unstopped = await runTemplate(newlines, tokenizer, { ...template, stop: ['@@'] }, 'Good morning.', { maxNewTokens: 8 });
  assert.equal(unstopped.sequences[0].finishReason, 'length');
  assert.ok(unstopped.sequences[0].text.includes('\n'));
});

test("a template file's stop string cuts the generated text where it appears", async () => {
  const dir = tempDir('templates');
  const file = path.join(dir, 'shout.json');
  writeFileSync(file, JSON.stringify({ name: 'Shout', prompt: 'Quiet: {text}\nLoud:', stop: ['@@never@@'] }));
  const template = await resolveTemplate(file);
  const options = { maxNewTokens: 12 };
  const free = await runTemplate(base, tokenizer, template, 'hello there', options);
  const text = free.sequences[0].text;
  assert.equal(free.sequences[0].finishReason, 'length');
  // Choose as stop string the text of a later token that has not appeared before it.
  const pieces = free.sequences[0].ids.map((id) => tokenizer.decode([id]));
  let offset = 0;
  let stop: string | null = null;
  let at = -1;
  for (const [k, piece] of pieces.entries()) {
    if (k > 0 && piece.trim() !== '' && text.indexOf(piece) === offset) {
      stop = piece;
      at = offset;
      break;
    }
    offset += piece.length;
  }
  assert.ok(stop !== null, `no usable stop string in ${JSON.stringify(text)}`);
  const cut = await runTemplate(base, tokenizer, { ...template, stop: [stop] }, 'hello there', options);
  assert.equal(cut.sequences[0].finishReason, 'stop');
  assert.equal(cut.sequences[0].text, text.slice(0, at));
});

test('templates are checked, and running one leaks no tensors', async () => {
  assert.throws(() => validateTemplate({ prompt: 'no slot' }), /exactly once/);
  assert.throws(() => validateTemplate({ prompt: '{text} {text}' }), /2 times/);
  assert.throws(() => validateTemplate({ prompt: '{text}', stop: [''] }), /non-empty/);
  await assert.rejects(resolveTemplate('/nonexistent/template.json'), /neither a built-in template/);
  const txt = path.join(tempDir('templates-txt'), 'plain.txt');
  writeFileSync(txt, 'Say it again: {text}\nAgain:\n');
  const plain = await resolveTemplate(txt);
  assert.deepEqual(plain.stop, ['\n']);
  assert.equal(plain.prompt, 'Say it again: {text}\nAgain:');
  await runTemplate(base, tokenizer, builtinTemplate('formal')!, 'hey', { maxNewTokens: 2 });
  const before = tf.memory().numTensors;
  await runTemplate(base, tokenizer, builtinTemplate('formal')!, 'hey whats up', { maxNewTokens: 3 });
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(runTemplate(base, tokenizer, plain, '   '), /no text/);
});
