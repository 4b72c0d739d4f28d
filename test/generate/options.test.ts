import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GenerationOptionsError, resolveOptions } from '../../worker/generate/index.js';
import type { GenerationOptions } from '../../worker/generate/index.js';

const resolve = (options: GenerationOptions, promptLength = 5) => resolveOptions(options, promptLength, 50256, 50257);

test('defaults are those of Hugging Face generate', () => {
  const r = resolve({ seed: 3 });
  assert.equal(r.maxNewTokens, 15); // max_length 20 − 5 prompt tokens
  assert.equal(r.doSample, false);
  assert.equal(r.temperature, 1);
  assert.equal(r.topK, 50);
  assert.equal(r.topP, 1);
  assert.equal(r.repetitionPenalty, 1);
  assert.equal(r.noRepeatNgramSize, 0);
  assert.equal(r.minNewTokens, 0);
  assert.equal(r.numReturnSequences, 1);
  assert.equal(r.eosTokenId, 50256);
  assert.deepEqual(r.stop, []);
  assert.equal(r.seed, 3);
});

test('maxNewTokens wins over maxLength; maxLength counts the prompt', () => {
  assert.equal(resolve({ maxLength: 12 }).maxNewTokens, 7);
  assert.equal(resolve({ maxLength: 12, maxNewTokens: 30 }).maxNewTokens, 30);
  assert.equal(resolve({ maxNewTokens: 1 }, 100).maxNewTokens, 1);
});

test('a prompt that fills maxLength is an error pointing at maxNewTokens', () => {
  assert.throws(() => resolve({}, 20), (e: unknown) => e instanceof GenerationOptionsError && e.option === 'maxLength' && /maxNewTokens/.test(e.message));
});

test('greedy decoding with several return sequences is refused, as in Hugging Face', () => {
  assert.throws(() => resolve({ numReturnSequences: 3 }), /numReturnSequences.*doSample true/);
  assert.equal(resolve({ numReturnSequences: 3, doSample: true }).numReturnSequences, 3);
});

test('invalid values name the option', () => {
  const cases: [GenerationOptions, string][] = [
    [{ maxNewTokens: 0 }, 'maxNewTokens'],
    [{ maxNewTokens: 2.5 }, 'maxNewTokens'],
    [{ maxLength: -1 }, 'maxLength'],
    [{ minNewTokens: -1 }, 'minNewTokens'],
    [{ numReturnSequences: 0, doSample: true }, 'numReturnSequences'],
    [{ temperature: 0 }, 'temperature'],
    [{ temperature: Number.NaN }, 'temperature'],
    [{ topK: -1 }, 'topK'],
    [{ topK: 1.5 }, 'topK'],
    [{ topP: 1.5 }, 'topP'],
    [{ topP: -0.1 }, 'topP'],
    [{ repetitionPenalty: 0 }, 'repetitionPenalty'],
    [{ noRepeatNgramSize: -2 }, 'noRepeatNgramSize'],
    [{ stop: [''] }, 'stop'],
    [{ stop: 'x' as unknown as string[] }, 'stop'],
    [{ seed: 1.5 }, 'seed'],
    [{ eosTokenId: 60000 }, 'eosTokenId'],
    [{ doSample: 'yes' as unknown as boolean }, 'doSample'],
    [{ signal: {} as AbortSignal }, 'signal'],
    [{ max_new_tokens: 5 } as unknown as GenerationOptions, 'max_new_tokens'],
  ];
  for (const [options, name] of cases) {
    assert.throws(
      () => resolve(options),
      (e: unknown) => e instanceof GenerationOptionsError && e.option === name && e.message.startsWith(`${name}:`),
      JSON.stringify(options),
    );
  }
});

test('eosTokenId null disables end-of-text; a seedless request still gets a seed', () => {
  assert.equal(resolve({ eosTokenId: null }).eosTokenId, null);
  const seed = resolve({ doSample: true }).seed;
  assert.ok(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32);
  assert.equal(resolve({ seed: -1 }).seed, 2 ** 32 - 1);
});
