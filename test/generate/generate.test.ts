import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { generate, type TokenEvent } from '../../worker/generate/index.js';
import { FakeModel, FakeTokenizer, favour, hashedLogits, scriptedModel, useWasmBackend, type LogitsFn } from './fakes.js';

before(useWasmBackend);

const tok = new FakeTokenizer(['Hel', 'lo', ' wor', 'ld', '.', '\n\n', ' the']);
const V = tok.vocabSize;
const EOS = tok.eosTokenId;
const ids = (...pieces: string[]) => pieces.map((p) => tok.id(p));
const prompt = [...new TextEncoder().encode('Say: ')];

/** Runs generate and records the stream. */
async function run(model: FakeModel, promptIds: number[], options: Parameters<typeof generate>[3]) {
  const events: TokenEvent[] = [];
  const result = await generate(model, tok, promptIds, options, (e) => events.push(e));
  return { result, events };
}

test('greedy decoding follows the highest logit and reports length', async () => {
  const script = ids('Hel', 'lo', ' wor', 'ld');
  const model = scriptedModel(V, 64, EOS, prompt.length, script);
  const { result, events } = await run(model, prompt, { maxNewTokens: 3 });
  const [seq] = result.sequences;
  assert.deepEqual(seq.ids, script.slice(0, 3));
  assert.equal(seq.text, 'Hello wor');
  assert.equal(seq.finishReason, 'length');
  assert.equal(result.promptTokens, prompt.length);
  assert.equal(result.truncatedPromptTokens, 0);
  assert.deepEqual(events.map((e) => e.textDelta), ['Hel', 'lo', ' wor']);
  assert.deepEqual(events.map((e) => e.text), ['Hel', 'Hello', 'Hello wor']);
  // One prefill of the whole prompt, then one single-token step per further token; the last token is never fed.
  assert.deepEqual(model.forwards.map((f) => f.tokens), [[prompt], [[script[0]]], [[script[1]]]]);
  const t = result.timings;
  assert.ok(t.prefillMs >= 0 && t.decodeMs >= 0 && t.totalMs >= t.prefillMs && t.decodeTokensPerS >= 0);
});

test('maxLength counts the prompt (default 20); maxNewTokens wins over it', async () => {
  const model = () => scriptedModel(V, 64, null, prompt.length, ids('lo'));
  assert.equal((await run(model(), prompt, {})).result.sequences[0].ids.length, 20 - prompt.length);
  assert.equal((await run(model(), prompt, { maxLength: 8 })).result.sequences[0].ids.length, 8 - prompt.length);
  assert.equal((await run(model(), prompt, { maxLength: 8, maxNewTokens: 9 })).result.sequences[0].ids.length, 9);
  await assert.rejects(run(model(), prompt, { maxLength: prompt.length }), /maxLength.*maxNewTokens/);
});

test('end-of-text ends a sequence: in ids (as in HF), not in text', async () => {
  const model = scriptedModel(V, 64, EOS, prompt.length, [...ids('Hel', 'lo'), EOS, ...ids(' wor')]);
  const { result, events } = await run(model, prompt, { maxNewTokens: 10 });
  assert.deepEqual(result.sequences[0], { ids: [...ids('Hel', 'lo'), EOS], text: 'Hello', finishReason: 'eos' });
  assert.equal(events.length, 3);
  assert.deepEqual(events[2], { sequence: 0, tokenId: EOS, textDelta: '', text: 'Hello' });
  // eosTokenId: null disables it; another id can take its place.
  const off = await run(scriptedModel(V, 64, EOS, prompt.length, [EOS, EOS]), prompt, { maxNewTokens: 2, eosTokenId: null });
  assert.equal(off.result.sequences[0].finishReason, 'length');
  assert.equal(off.result.sequences[0].text, '<|endoftext|><|endoftext|>');
  const dot = await run(scriptedModel(V, 64, EOS, prompt.length, ids('Hel', '.', 'lo')), prompt, { maxNewTokens: 5, eosTokenId: tok.id('.') });
  assert.deepEqual(dot.result.sequences[0], { ids: ids('Hel', '.'), text: 'Hel', finishReason: 'eos' });
});

test('minNewTokens bans end-of-text until that many tokens exist', async () => {
  // End-of-text is always the favourite; " the" is the runner-up.
  const model = () =>
    new FakeModel(V, 64, EOS, () => {
      const row = favour(V, EOS, 5);
      row[tok.id(' the')] = 4;
      return row;
    });
  const none = await run(model(), prompt, { maxNewTokens: 10 });
  assert.deepEqual(none.result.sequences[0].ids, [EOS]);
  const three = await run(model(), prompt, { maxNewTokens: 10, minNewTokens: 3 });
  assert.deepEqual(three.result.sequences[0], { ids: [...ids(' the', ' the', ' the'), EOS], text: ' the the the', finishReason: 'eos' });
});

test('a stop string spanning tokens cuts the text and never shows in the stream', async () => {
  // "Hello world." with stop "o w": completed by " wor", begun by "lo".
  const model = scriptedModel(V, 64, EOS, prompt.length, ids('Hel', 'lo', ' wor', 'ld', '.'));
  const { result, events } = await run(model, prompt, { maxNewTokens: 10, stop: ['o w'] });
  const [seq] = result.sequences;
  assert.equal(seq.text, 'Hell');
  assert.equal(seq.finishReason, 'stop');
  assert.deepEqual(seq.ids, ids('Hel', 'lo', ' wor')); // the completing token is kept, as HF's stop strings do
  assert.deepEqual(events.map((e) => e.textDelta), ['Hel', 'l', '']);
  assert.equal(events.map((e) => e.textDelta).join(''), seq.text);
  for (const e of events) assert.ok(!e.text.includes('o'), `stream showed ${JSON.stringify(e.text)}`);
  // Only the forwards needed: prefill + two steps.
  assert.equal(model.forwards.length, 3);
});

test('held-back text is released once it cannot start a stop string, and at the end', async () => {
  const model = scriptedModel(V, 64, EOS, prompt.length, ids('Hel', 'lo', ' the', 'lo'));
  const { result, events } = await run(model, prompt, { maxNewTokens: 4, stop: ['lo!', 'o w'] });
  // "Hel" ends with "l" and "Hello" with "lo": both could begin "lo!", so they wait.
  assert.deepEqual(events.map((e) => e.textDelta), ['He', 'l', 'lo the', 'lo']);
  assert.equal(result.sequences[0].text, 'Hello thelo');
  assert.equal(result.sequences[0].finishReason, 'length');
});

test('the earliest of several stop strings wins; stop strings count only from minNewTokens', async () => {
  const script = ids('Hel', 'lo', '.', '\n\n', ' the', '.', 'Hel');
  const first = await run(scriptedModel(V, 64, EOS, prompt.length, script), prompt, { maxNewTokens: 7, stop: ['\n', 'lo.'] });
  assert.equal(first.result.sequences[0].text, 'Hel');
  const late = await run(scriptedModel(V, 64, EOS, prompt.length, script), prompt, { maxNewTokens: 7, stop: ['.'], minNewTokens: 4 });
  // The "." of token 3 came before 4 tokens existed; the "." of token 6 counts.
  assert.equal(late.result.sequences[0].text, 'Hello.\n\n the');
  assert.equal(late.result.sequences[0].finishReason, 'stop');
  assert.equal(late.events.map((e) => e.textDelta).join(''), 'Hello.\n\n the');
});

test('a prompt longer than the context keeps its most recent tokens', async () => {
  const long = Array.from({ length: 30 }, (_, i) => 65 + (i % 26));
  const model = scriptedModel(V, 16, null, 10, ids('lo'));
  const { result } = await run(model, long, { maxNewTokens: 6 });
  assert.equal(result.truncatedPromptTokens, 20);
  assert.equal(result.promptTokens, 10);
  assert.deepEqual(model.forwards[0].tokens, [long.slice(20)]);
  assert.equal(result.sequences[0].ids.length, 6);
  await assert.rejects(run(scriptedModel(V, 16, EOS, 1, [65]), long, { maxNewTokens: 16 }), /maxNewTokens.*context of 16/);
});

test('an empty prompt starts from the beginning-of-text token', async () => {
  const model = scriptedModel(V, 16, EOS, 1, ids('Hel'));
  const { result } = await run(model, [], { maxNewTokens: 1 });
  assert.deepEqual(model.forwards[0].tokens, [[EOS]]);
  assert.equal(result.sequences[0].text, 'Hel');
  await assert.rejects(run(model, [V + 3], { maxNewTokens: 1 }), /promptIds: .* not a token id/);
});

test('repetition penalty and no-repeat n-grams change greedy choices as in HF', async () => {
  // Favourite "lo" (2.0), runner-up " the" (1.5): a penalty of 1.5 makes "lo" 1.33 once it appeared.
  const logits = () => {
    const row = new Float32Array(V);
    row[tok.id('lo')] = 2;
    row[tok.id(' the')] = 1.5;
    return row;
  };
  const plain = await run(new FakeModel(V, 64, EOS, logits), prompt, { maxNewTokens: 3 });
  assert.equal(plain.result.sequences[0].text, 'lololo');
  // Step 2: "lo" 2/1.5 = 1.33 < 1.5. Step 3: both seen, "lo" 1.33 > " the" 1.5/1.5 = 1.
  const penalised = await run(new FakeModel(V, 64, EOS, logits), prompt, { maxNewTokens: 3, repetitionPenalty: 1.5 });
  assert.equal(penalised.result.sequences[0].text, 'lo thelo');
  // The prompt counts: "lo" in the prompt is penalised from the first token.
  const inPrompt = await run(new FakeModel(V, 64, EOS, logits), [...prompt, tok.id('lo')], { maxNewTokens: 1, repetitionPenalty: 1.5 });
  assert.equal(inPrompt.result.sequences[0].text, ' the');
  // Unigram ban: each token at most once.
  const ngram = await run(new FakeModel(V, 64, EOS, logits), prompt, { maxNewTokens: 2, noRepeatNgramSize: 1 });
  assert.equal(ngram.result.sequences[0].text, 'lo the');
});

test('sampling is deterministic by seed, and the seed matters', async () => {
  const sample = async (seed: number) =>
    (await run(new FakeModel(V, 64, EOS, hashedLogits(V, 3)), prompt, { maxNewTokens: 12, doSample: true, seed, topK: 0 })).result.sequences[0].ids;
  const a = await sample(5);
  assert.deepEqual(await sample(5), a);
  assert.notDeepEqual(await sample(6), a);
});

test('top-k and top-p restrict samples to their support sets', async () => {
  const logits = hashedLogits(V, 3);
  // Greedy first token's row (from the prompt): compute the allowed sets by hand.
  const row = Float32Array.from(logits(prompt));
  const order = [...row.keys()].sort((a, b) => row[b] - row[a]);
  const top5 = new Set(order.slice(0, 5));
  const probs = order.map((i) => Math.exp(row[i]));
  const total = probs.reduce((a, b) => a + b, 0);
  const nucleus = new Set<number>();
  let above = 0;
  for (let j = 0; j < order.length && (j === 0 || above < 0.3); j++) {
    nucleus.add(order[j]);
    above += probs[j] / total;
  }
  assert.ok(nucleus.size > 1 && nucleus.size < 100);
  const firsts = { k: new Set<number>(), p: new Set<number>() };
  for (let seed = 0; seed < 150; seed++) {
    const k = await generate(new FakeModel(V, 64, EOS, logits), tok, prompt, { maxNewTokens: 1, doSample: true, seed, topK: 5 });
    firsts.k.add(k.sequences[0].ids[0]);
    const p = await generate(new FakeModel(V, 64, EOS, logits), tok, prompt, { maxNewTokens: 1, doSample: true, seed, topK: 0, topP: 0.3 });
    firsts.p.add(p.sequences[0].ids[0]);
  }
  assert.deepEqual([...firsts.k].sort(), [...top5].sort());
  for (const id of firsts.p) assert.ok(nucleus.has(id), `sampled ${id} outside the nucleus`);
  assert.ok(firsts.p.size >= Math.min(3, nucleus.size));
});

test('numReturnSequences decodes one batch per step and sequence j equals a single run with seed + j', async () => {
  const options = { maxNewTokens: 8, doSample: true, temperature: 0.8, topK: 20, eosTokenId: null, seed: 100 };
  const batched = new FakeModel(V, 64, EOS, hashedLogits(V, 3));
  const { result, events } = await run(batched, prompt, { ...options, numReturnSequences: 3 });
  assert.equal(result.sequences.length, 3);
  // Prefill with batch 1, expand to 3, then 7 steps of batch 3.
  assert.deepEqual(batched.log.map((e) => `${e.op}:${e.rows}`), ['forward:1', 'expand:3', ...Array(7).fill('forward:3')]);
  for (let j = 0; j < 3; j++) {
    const single = await run(new FakeModel(V, 64, EOS, hashedLogits(V, 3)), prompt, { ...options, seed: 100 + j });
    assert.deepEqual(result.sequences[j], single.result.sequences[0]);
    assert.equal(events.filter((e) => e.sequence === j).map((e) => e.textDelta).join(''), result.sequences[j].text);
  }
  assert.ok(new Set(result.sequences.map((s) => s.ids.join())).size > 1, 'the three samples should differ');
});

test('finished sequences leave the batch once they are half of it', async () => {
  // Sequence rows whose history holds token 'Hel' end (eos comes next); others continue.
  const helloId = tok.id('Hel');
  const logits: LogitsFn = (history) => {
    if (history.at(-1) === helloId) return favour(V, EOS, 50);
    const row = new Float32Array(V).fill(-50);
    row[helloId] = 0;
    row[tok.id('lo')] = 0;
    return row;
  };
  let seedUsed = -1;
  // Find a seed whose 2 sequences finish at different times.
  for (let seed = 0; seed < 50 && seedUsed < 0; seed++) {
    const probe = await generate(new FakeModel(V, 64, EOS, logits), tok, prompt, { maxNewTokens: 12, doSample: true, topK: 0, numReturnSequences: 2, seed });
    const [a, b] = probe.sequences;
    if (a.finishReason === 'eos' && b.finishReason === 'eos' && Math.abs(a.ids.length - b.ids.length) >= 2) seedUsed = seed;
  }
  assert.ok(seedUsed >= 0);
  const model = new FakeModel(V, 64, EOS, logits);
  const { result } = await run(model, prompt, { maxNewTokens: 12, doSample: true, topK: 0, numReturnSequences: 2, seed: seedUsed });
  const ops = model.log.map((e) => `${e.op}:${e.rows}`);
  assert.ok(ops.includes('select:1'), ops.join(' '));
  const afterSelect = ops.slice(ops.indexOf('select:1') + 1);
  assert.ok(afterSelect.length > 0 && afterSelect.every((o) => o === 'forward:1'), ops.join(' '));
  for (const s of result.sequences) assert.equal(s.finishReason, 'eos');
  // Same results as without compaction: each equals its single run.
  for (let j = 0; j < 2; j++) {
    const single = await generate(new FakeModel(V, 64, EOS, logits), tok, prompt, { maxNewTokens: 12, doSample: true, topK: 0, seed: seedUsed + j });
    assert.deepEqual(result.sequences[j], single.sequences[0]);
  }
});

test('abort stops within one step, resolves with "aborted" and frees every tensor', async () => {
  const before = tf.memory().numTensors;
  const model = scriptedModel(V, 64, EOS, prompt.length, Array(100).fill(tok.id('lo')));
  const controller = new AbortController();
  const seen: TokenEvent[] = [];
  const result = await generate(model, tok, prompt, { maxNewTokens: 50, signal: controller.signal }, (e) => {
    seen.push(e);
    if (seen.length === 4) controller.abort();
  });
  assert.equal(result.sequences[0].finishReason, 'aborted');
  assert.equal(result.sequences[0].ids.length, 4);
  assert.equal(result.sequences[0].text, 'lolololo');
  assert.equal(seen.length, 4);
  assert.equal(model.forwards.length, 4); // prefill + 3 steps; none after the abort
  assert.equal(tf.memory().numTensors, before);
});

test('abort from outside (a timer, as a worker message would) is seen between steps', async () => {
  const model = scriptedModel(V, 1000, EOS, prompt.length, Array(1000).fill(tok.id('lo')));
  const controller = new AbortController();
  let count = 0;
  const result = await generate(model, tok, prompt, { maxNewTokens: 900, signal: controller.signal }, () => {
    if (++count === 3) setImmediate(() => controller.abort());
  });
  assert.equal(result.sequences[0].finishReason, 'aborted');
  assert.ok(result.sequences[0].ids.length <= 4, `ran ${result.sequences[0].ids.length} tokens`);
});

test('an already aborted signal runs nothing', async () => {
  const model = scriptedModel(V, 64, EOS, prompt.length, ids('lo'));
  const result = await generate(model, tok, prompt, { maxNewTokens: 5, signal: AbortSignal.abort() });
  assert.deepEqual(result.sequences, [{ ids: [], text: '', finishReason: 'aborted' }]);
  assert.equal(model.log.length, 0);
});

test('each step reads back exactly one tensor: the last-position logits', async () => {
  const backend = tf.backend() as unknown as {
    read: (id: object) => Promise<unknown>;
    readSync: (id: object) => unknown;
    typedArrayFromHeap: (info: object) => unknown;
  };
  const original = { read: backend.read, readSync: backend.readSync, typedArrayFromHeap: backend.typedArrayFromHeap };
  // The wasm backend's read calls its readSync, which calls typedArrayFromHeap (through which the loop reads
  // the logits in place, readValues): count only the outermost call.
  let reads = 0;
  let depth = 0;
  const counted = <T>(fn: (...a: [object]) => T) =>
    function (this: unknown, ...args: [object]): T {
      if (depth++ === 0) reads++;
      try {
        return fn.apply(this, args);
      } finally {
        depth--;
      }
    };
  backend.read = counted(original.read);
  backend.readSync = counted(original.readSync);
  backend.typedArrayFromHeap = counted(original.typedArrayFromHeap);
  try {
    const model = new FakeModel(V, 64, EOS, hashedLogits(V));
    await generate(model, tok, prompt, { maxNewTokens: 6, doSample: true, seed: 1, numReturnSequences: 2, eosTokenId: null });
    assert.equal(model.forwards.length, 6);
    assert.equal(reads, 6);
  } finally {
    backend.read = original.read;
    backend.readSync = original.readSync;
    backend.typedArrayFromHeap = original.typedArrayFromHeap;
  }
});

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

test('streaming Chinese and emoji split across byte tokens never shows a broken character', async () => {
  const text = '你好, 世界 😀👍🏽!';
  const bytes = [...new TextEncoder().encode(text)];
  const model = scriptedModel(V, 128, EOS, prompt.length, bytes);
  const { result, events } = await run(model, prompt, { maxNewTokens: bytes.length + 1 });
  assert.equal(result.sequences[0].text, text);
  assert.equal(result.sequences[0].finishReason, 'eos');
  assert.equal(events.map((e) => e.textDelta).join(''), text);
  for (const e of events) {
    assert.ok(!e.textDelta.includes('\uFFFD'), JSON.stringify(e.textDelta));
    assert.ok(!LONE_SURROGATE.test(e.textDelta), `lone surrogate in ${JSON.stringify(e.textDelta)}`);
  }
  assert.ok(events.filter((e) => e.textDelta === '').length > 5, 'multi-byte characters should take several tokens');
  // A stop string made of emoji, spanning tokens.
  const stopped = await run(scriptedModel(V, 128, EOS, prompt.length, bytes), prompt, { maxNewTokens: bytes.length, stop: ['👍'] });
  assert.equal(stopped.result.sequences[0].text, '你好, 世界 😀');
  assert.equal(stopped.events.map((e) => e.textDelta).join(''), '你好, 世界 😀');
});

test('a sequence cut inside a character ends with U+FFFD, like decode', async () => {
  const bytes = [...new TextEncoder().encode('a😀')];
  const model = scriptedModel(V, 64, EOS, prompt.length, bytes);
  const { result, events } = await run(model, prompt, { maxNewTokens: 3 });
  assert.equal(result.sequences[0].text, tok.decode(bytes.slice(0, 3)));
  assert.equal(result.sequences[0].text, 'a\uFFFD');
  assert.equal(events.map((e) => e.textDelta).join(''), 'a\uFFFD');
});

test('no tensors leak over a long generation (fake model allocating like a real one)', async () => {
  const model = scriptedModel(V, 1100, EOS, prompt.length, Array(1100).fill(tok.id('lo')));
  const counts: number[] = [];
  const before = tf.memory().numTensors;
  const result = await generate(model, tok, prompt, { maxNewTokens: 1010, eosTokenId: null }, () => {
    counts.push(tf.memory().numTensors);
  });
  assert.equal(result.sequences[0].ids.length, 1010);
  assert.equal(counts[1009], counts[9]);
  assert.equal(tf.memory().numTensors, before);
});

test('the screen asks for the highest logit when greedy and the top k when sampling, and a model that honours it changes nothing', async () => {
  const cases = [
    { maxNewTokens: 12, repetitionPenalty: 1.6, noRepeatNgramSize: 2, minNewTokens: 4 },
    { maxNewTokens: 12, doSample: true, topK: 6, temperature: 0.7, topP: 0.9, repetitionPenalty: 1.6, noRepeatNgramSize: 2, seed: 5, numReturnSequences: 3 },
  ];
  for (const options of cases) {
    const plain = await run(new FakeModel(V, 64, EOS, hashedLogits(V, 3)), prompt, options);
    const screening = new FakeModel(V, 64, EOS, hashedLogits(V, 3));
    screening.screens = true;
    const screened = await run(screening, prompt, options);
    assert.deepEqual(screened.result.sequences, plain.result.sequences);
    assert.deepEqual(new Set(screening.forwards.map((f) => f.keep)), new Set([options.doSample ? 6 : 1]));
    // The same screen without the processors (penalties, bans, temperature) would have kept other tokens.
    const careless = new FakeModel(V, 64, EOS, hashedLogits(V, 3));
    careless.screens = true;
    careless.screenIgnoresProcessors = true;
    assert.notDeepEqual((await run(careless, prompt, options)).result.sequences, plain.result.sequences);
  }
});

test('sampling from every token (no top-k) asks for no screen', async () => {
  const model = new FakeModel(V, 64, EOS, hashedLogits(V, 3));
  model.screens = true;
  await run(model, prompt, { maxNewTokens: 4, doSample: true, topK: 0, topP: 0.9, seed: 1 });
  assert.ok(model.forwards.every((f) => f.keep === undefined));
});
