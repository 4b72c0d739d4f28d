/**
 * Prefix reuse in-process, on the tiny fixture model: reuse must never change a result, only skip work.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { generate, promptScreen } from '../../worker/generate/index.js';
import { loadModel } from '../../worker/model/load.js';
import type { ForwardOptions, KvCache, LanguageModel } from '../../worker/model/types.js';
import { PrefillStopped, PrefixSession, chunkEnds, commonPrefixLength, contextWindow } from '../../worker/session.js';
import { gpt2Tokenizer } from '../../worker/tokenizer/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const modelDir = path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2');
const tokenizer = gpt2Tokenizer();
let model: LanguageModel;

before(async () => {
  await tf.setBackend('wasm');
  model = await loadModel(modelDir);
});
after(() => model.dispose());

/** The model, counting the token positions it is asked to run. */
class CountingModel implements LanguageModel {
  positions = 0;
  constructor(private readonly base: LanguageModel) {}
  get config() {
    return this.base.config;
  }
  get weightBytes() {
    return this.base.weightBytes;
  }
  createCache(batch: number) {
    return this.base.createCache(batch);
  }
  forward(tokens: number[][], cache: KvCache, options?: ForwardOptions) {
    this.positions += tokens[0].length;
    return this.base.forward(tokens, cache, options);
  }
  dispose() {}
}

/** Last-position logits of `ids` run from an empty cache. */
function freshLogits(ids: number[]): Float32Array {
  const cache = model.createCache(1);
  const logits = model.forward([ids], cache);
  const values = logits.dataSync() as Float32Array;
  logits.dispose();
  cache.dispose();
  return values;
}

async function greedy(m: LanguageModel, ids: number[], maxNewTokens = 6): Promise<number[]> {
  const result = await generate(m, tokenizer, ids, { maxNewTokens, eosTokenId: null });
  return result.sequences[0].ids;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

test('contextWindow keeps the tail, starting at a multiple of the stride', () => {
  const ids = Array.from({ length: 25 }, (_, i) => i);
  assert.deepEqual(contextWindow(ids.slice(0, 10), 10, 4), ids.slice(0, 10));
  // 25 tokens, room for 10: the start must be ≥ 15 and a multiple of 4 → 16.
  assert.deepEqual(contextWindow(ids, 10, 4), ids.slice(16));
  // Typing one more token keeps the same start, so the cache stays valid.
  assert.equal(contextWindow([...ids, 25], 10, 4)[0], 16);
  assert.deepEqual(contextWindow(ids, 10, 1), ids.slice(15));
  assert.throws(() => contextWindow(ids, 0, 4), /budget/);
});

test('commonPrefixLength', () => {
  assert.equal(commonPrefixLength([1, 2, 3], [1, 2, 4, 5]), 2);
  assert.equal(commonPrefixLength([], [1]), 0);
  assert.equal(commonPrefixLength([7, 8], [7, 8]), 2);
});

test('typing forward reuses the common prefix and gives the same logits and suggestion', async () => {
  const counting = new CountingModel(model);
  const session = new PrefixSession(counting);
  const first = tokenizer.encode('The quick brown fox jumps over the');
  const second = tokenizer.encode('The quick brown fox jumps over the lazy dog and');
  assert.equal(commonPrefixLength(first, second), first.length, 'test setup: the second prompt extends the first');

  const a = session.prepare(first, { reuse: true });
  assert.equal(a.reusedTokens, 0);
  const suggestionA = await greedy(a.model, first);
  a.release();

  counting.positions = 0;
  const b = session.prepare(second, { reuse: true });
  assert.ok(b.reusedTokens >= first.length, `reused ${b.reusedTokens} of ${first.length} tokens`);
  const viaView = b.model.forward([second], b.model.createCache(1));
  // Only the new tokens ran: in the prefill, and not again when generate asks for the prompt's logits.
  assert.equal(counting.positions, second.length - b.reusedTokens);
  assert.ok(maxAbsDiff(viaView.dataSync() as Float32Array, freshLogits(second)) < 1e-4);
  viaView.dispose();
  b.release();

  const c = session.prepare(second, { reuse: true });
  const suggestionReused = await greedy(c.model, second);
  c.release();
  assert.deepEqual(suggestionReused, await greedy(model, second));
  assert.deepEqual(suggestionA, await greedy(model, first));
  session.dispose();
});

test('the retokenized last word is run again ("Hel" → "Hello")', () => {
  const session = new PrefixSession(model);
  const short = tokenizer.encode('She said Hel');
  const long = tokenizer.encode('She said Hello');
  const common = commonPrefixLength(short, long);
  assert.ok(common < short.length, 'test setup: the last token changes');
  session.prepare(short, { reuse: true }).release();
  const p = session.prepare(long, { reuse: true });
  assert.equal(p.reusedTokens, common);
  p.release();
  assert.deepEqual(session.cachedIds, long);
  session.dispose();
});

test('an edit earlier in the text invalidates exactly what follows it', () => {
  const session = new PrefixSession(model);
  const original = tokenizer.encode('One two three four five six seven');
  const edited = tokenizer.encode('One two THREE four five six seven');
  const common = commonPrefixLength(original, edited);
  assert.ok(common > 0 && common < original.length - 2);
  session.prepare(original, { reuse: true }).release();
  const p = session.prepare(edited, { reuse: true });
  assert.equal(p.reusedTokens, common);
  const logits = p.model.forward([edited], p.model.createCache(1));
  assert.ok(maxAbsDiff(logits.dataSync() as Float32Array, freshLogits(edited)) < 1e-4);
  logits.dispose();
  p.release();

  const fromStart = tokenizer.encode('Zero two THREE four');
  const q = session.prepare(fromStart, { reuse: true });
  assert.equal(q.reusedTokens, 0);
  q.release();
  session.dispose();
});

test('reuse: false runs the whole prompt; the same prompt twice reruns only its last token', () => {
  const session = new PrefixSession(model);
  const ids = tokenizer.encode('A sentence to remember');
  session.prepare(ids, { reuse: true }).release();
  const again = session.prepare(ids, { reuse: true });
  assert.equal(again.reusedTokens, ids.length - 1);
  again.release();
  const fresh = session.prepare(ids, { reuse: false });
  assert.equal(fresh.reusedTokens, 0);
  fresh.release();
  session.dispose();
});

test('greedy generation keeps its tokens in the cache, so accepting the suggestion reuses them', async () => {
  const session = new PrefixSession(model);
  const ids = tokenizer.encode('Once upon a time');
  const p = session.prepare(ids, { reuse: true });
  const suggestion = await greedy(p.model, ids, 5);
  p.release();
  // Every generated token but the last was fed back through the model.
  assert.deepEqual(session.cachedIds, [...ids, ...suggestion.slice(0, -1)]);
  const accepted = [...ids, ...suggestion];
  const q = session.prepare(accepted, { reuse: true });
  assert.equal(q.reusedTokens, accepted.length - 1);
  q.release();
  session.dispose();
});

test('several alternatives sample from an expanded copy; the session cache keeps the prompt', async () => {
  const session = new PrefixSession(model);
  const ids = tokenizer.encode('In the morning we');
  session.prepare(tokenizer.encode('In the'), { reuse: true }).release();
  const p = session.prepare(ids, { reuse: true });
  const options = { maxNewTokens: 4, numReturnSequences: 3, doSample: true, seed: 7, eosTokenId: null };
  const viaSession = await generate(p.model, tokenizer, ids, options);
  p.release();
  const direct = await generate(model, tokenizer, ids, options);
  assert.deepEqual(
    viaSession.sequences.map((s) => s.ids),
    direct.sequences.map((s) => s.ids),
  );
  assert.deepEqual(session.cachedIds, ids);
  session.dispose();
});

test('a first forward pass that is not the prepared prompt runs for real and reports no reuse', () => {
  const session = new PrefixSession(model);
  const ids = tokenizer.encode('Good morning to you all');
  session.prepare(ids.slice(0, 3), { reuse: true }).release();
  const p = session.prepare(ids, { reuse: true });
  assert.equal(p.reusedTokens, 3);
  const other = tokenizer.encode('Something else entirely');
  const logits = p.model.forward([other], p.model.createCache(1));
  assert.ok(maxAbsDiff(logits.dataSync() as Float32Array, freshLogits(other)) < 1e-4);
  logits.dispose();
  assert.equal(p.reusedTokens, 0);
  p.release();
  assert.deepEqual(session.cachedIds, other);
  session.dispose();
});

test('no tensors leak across many prepared prompts', async () => {
  const session = new PrefixSession(model);
  const words = 'the cat sat on a mat and then it went to sleep in the warm sun'.split(' ');
  const run = async (n: number) => {
    const ids = tokenizer.encode(words.slice(0, n).join(' '));
    const p = session.prepare(ids, { reuse: true });
    await greedy(p.model, ids, 3);
    p.release();
  };
  await run(2);
  const baseline = tf.memory().numTensors;
  for (let n = 3; n <= words.length; n++) await run(n);
  await run(4); // an edit back to a shorter text
  assert.equal(tf.memory().numTensors, baseline);
  session.dispose();
});

test('a prompt prepared with generate’s own screen runs once; a generation that asks otherwise runs it again; the tokens never change', async () => {
  const counting = new CountingModel(model);
  const session = new PrefixSession(counting);
  const ids = tokenizer.encode('The lighthouse keeper climbed the stairs');
  const greedyOptions = { maxNewTokens: 5, eosTokenId: null, repetitionPenalty: 1.3 };
  const screen = promptScreen(counting, tokenizer, ids, greedyOptions);
  assert.equal(screen?.keep, 1);

  const p = session.prepare(ids, { reuse: true, screen });
  assert.equal(counting.positions, ids.length);
  // The prompt's logits went through the screen: only the ones greedy decoding can pick are there.
  const primed = p.model.forward([ids], p.model.createCache(1), { screen });
  const kept = (primed.dataSync() as Float32Array).filter((v) => v !== -Infinity).length;
  primed.dispose();
  assert.ok(kept >= 1 && kept < 1000, `${kept} logits kept`);
  p.release();

  const q = session.prepare(ids, { reuse: false, screen });
  counting.positions = 0;
  const screened = await generate(q.model, tokenizer, ids, greedyOptions);
  assert.equal(counting.positions, 4, 'the four tokens fed back, not the prompt again');
  assert.equal(q.reusedTokens, 0);
  q.release();
  assert.deepEqual(screened.sequences[0].ids, (await generate(model, tokenizer, ids, greedyOptions)).sequences[0].ids);

  // Sampling from every token needs every logit: the screened prompt is run again, and nothing is wrong.
  const sampling = { maxNewTokens: 4, doSample: true, topK: 0, seed: 3, eosTokenId: null };
  assert.equal(promptScreen(counting, tokenizer, ids, sampling), undefined);
  session.prepare(ids.slice(0, 2), { reuse: true }).release();
  const r = session.prepare(ids, { reuse: true, screen });
  const rerun = await generate(r.model, tokenizer, ids, sampling);
  assert.equal(r.reusedTokens, 0, 'the prompt ran again');
  r.release();
  assert.deepEqual(rerun.sequences[0].ids, (await generate(model, tokenizer, ids, sampling)).sequences[0].ids);
  session.dispose();
});

test('chunkEnds: passes of the chunk size, none shorter than half of it', () => {
  assert.deepEqual(chunkEnds(0, 40, 8), [8, 16, 24, 32]);
  assert.deepEqual(chunkEnds(5, 17, 8), []);
  assert.deepEqual(chunkEnds(5, 18, 8), [13]);
  assert.deepEqual(chunkEnds(0, 1000, 128), [128, 256, 384, 512, 640, 768, 896]);
  assert.deepEqual(chunkEnds(0, 1000, undefined), []);
  for (const [from, to, chunk] of [[0, 40, 8], [3, 100, 9], [0, 1000, 128], [7, 7 + 193, 128]]) {
    const ends = [from, ...chunkEnds(from, to, chunk), to];
    for (let i = 1; i < ends.length; i++) assert.ok(ends[i] - ends[i - 1] > chunk / 2, `${ends}`);
  }
  assert.throws(() => chunkEnds(0, 40, 4), /chunkTokens/);
});

const LONG_TEXT =
  'The lighthouse keeper climbed the stairs every evening, and from the lamp room he could see the whole bay, the ' +
  'fishing boats coming home, the gulls over the harbour wall, and the lights of the town across the water, one by one.';

test('a prompt run in chunks gives the one long pass its logits, on one thread and on two', async () => {
  const ids = tokenizer.encode(LONG_TEXT).slice(0, 40);
  assert.equal(ids.length, 40);
  for (const threads of [1, 2]) {
    const m = threads === 1 ? model : await loadModel(modelDir, { threads: 2 });
    try {
      const whole = new PrefixSession(m).prepare(ids, { reuse: true });
      const wholeLogits = (await whole.model.forward([ids], whole.model.createCache(1)).data()) as Float32Array;
      whole.release();
      const session = new PrefixSession(m);
      const chunked = session.prepare(ids, { reuse: true, chunkTokens: 8, shouldStop: () => false });
      const view = chunked.model.forward([ids], chunked.model.createCache(1));
      // The same sums up to float32 rounding (the attention's shapes differ: each pass sees the cache so far).
      const diff = maxAbsDiff(view.dataSync() as Float32Array, wholeLogits);
      assert.ok(diff < 1e-4, `${threads} thread(s): ${diff}`);
      view.dispose();
      chunked.release();
      assert.deepEqual(session.cachedIds, ids);
      session.dispose();
    } finally {
      if (m !== model) m.dispose();
    }
  }
});

test('a chunked prefill told to stop keeps the chunks it ran, and the next prompt starts from them', async () => {
  const counting = new CountingModel(model);
  const session = new PrefixSession(counting);
  const ids = tokenizer.encode(LONG_TEXT).slice(0, 40);
  let asked = 0;
  // The session's cache exists from its first prompt on; the stopped prefill must add nothing to it.
  session.prepare(tokenizer.encode('Hello'), { reuse: true }).release();
  counting.positions = 0;
  const before = tf.memory().numTensors;
  assert.throws(
    () => session.prepare(ids, { reuse: true, chunkTokens: 8, shouldStop: () => ++asked === 2 }),
    (err: unknown) => err instanceof PrefillStopped && err.ranTokens === 16,
  );
  assert.equal(tf.memory().numTensors, before, 'no tensor left by the stopped prefill');
  assert.deepEqual(session.cachedIds, ids.slice(0, 16));
  assert.equal(counting.positions, 16);

  const p = session.prepare(ids, { reuse: true });
  assert.equal(p.reusedTokens, 16);
  assert.equal(counting.positions, 40, 'only the rest ran');
  const logits = p.model.forward([ids], p.model.createCache(1));
  assert.ok(maxAbsDiff(logits.dataSync() as Float32Array, freshLogits(ids)) < 1e-4);
  logits.dispose();
  p.release();
  session.dispose();
});
