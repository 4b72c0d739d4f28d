// The output layer screened by its int8 copy (worker/model/output-screen.ts): the bound holds on hostile
// numbers, the screen keeps every token that processing could put among the k highest, and a screened model
// gives the very logits (and tokens) of the full layer wherever they can matter.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { OutputScreen } from '../../worker/model/output-screen.js';
import { Q8Runner } from '../../worker/model/kernels/q8/runner.js';
import { kthLargest } from '../../worker/kth-largest.js';
import { createRandomModel } from '../../worker/model/random.js';
import { generate } from '../../worker/generate/index.js';
import type { GPT2Model } from '../../worker/model/gpt2.js';
import type { LogitsScreen } from '../../worker/model/types.js';
import { FakeTokenizer } from '../generate/fakes.js';
import { seededRandom } from '../tokenizer/random-text.js';
import { useWasm } from './helpers.js';

before(useWasm);

/**
 * Weights and inputs meant to strain the bound: heavy tails, one huge weight in some rows, rows and groups of
 * zeros or of numbers below 2^-120, inputs with outliers and empty groups.
 */
function hostileMatrix(vocab: number, width: number, seed: number): Float32Array {
  const u = seededRandom(seed);
  const w = new Float32Array(vocab * width);
  for (let r = 0; r < vocab; r++) {
    const kind = r % 7;
    for (let i = 0; i < width; i++) {
      const g = (u() - 0.5) * 0.1 * (u() < 0.05 ? 20 : 1);
      w[r * width + i] = kind === 3 ? 0 : kind === 5 && i < 64 ? g * 1e-38 : g;
    }
    if (kind === 1) w[r * width + Math.floor(u() * width)] = 3;
  }
  return w;
}

function hostileInput(width: number, seed: number): Float32Array {
  const u = seededRandom(seed);
  const h = new Float32Array(width);
  for (let i = 0; i < width; i++) h[i] = i >= 32 && i < 64 ? 0 : (u() - 0.5) * 4 * (u() < 0.02 ? 50 : 1);
  return h;
}

test('the int8 product lies within the bound of both the exact dot product and any float32 sum of it', () => {
  const [vocab, width] = [700, 256];
  const w = hostileMatrix(vocab, width, 3);
  const screen = new OutputScreen(w, vocab, width);
  const q8 = new Q8Runner();
  const block = q8.place(w, width, vocab, 'out-in');
  const approx = new Float32Array(vocab);
  let worst = 0;
  for (let trial = 0; trial < 6; trial++) {
    const h = hostileInput(width, 100 + trial);
    q8.run(block, h, 1, approx);
    const bound = screen.bound(h);
    assert.ok(Number.isFinite(bound) && bound > 0);
    for (let r = 0; r < vocab; r++) {
      let exact = 0;
      let sequential = 0;
      let abs = 0;
      for (let i = 0; i < width; i++) {
        exact += w[r * width + i] * h[i];
        sequential = Math.fround(sequential + Math.fround(w[r * width + i] * h[i]));
        abs += Math.abs(w[r * width + i] * h[i]);
      }
      const allowed = (Math.fround(maxAbs(w.subarray(r * width, (r + 1) * width)) / 127)) * bound;
      for (const value of [exact, sequential]) {
        const miss = Math.abs(approx[r] - value);
        assert.ok(miss <= allowed, `row ${r}: the int8 product is ${miss} away, the bound allows ${allowed}`);
        if (abs > 0) worst = Math.max(worst, miss / allowed);
      }
    }
  }
  // A bound that holds but is never near the error would screen little: here it is within ~20× of the worst.
  assert.ok(worst > 0.02, `the largest error was only ${worst} of the bound`);
});

function maxAbs(values: Float32Array): number {
  let max = 0;
  for (const v of values) max = Math.max(max, Math.abs(v));
  return max;
}

test('the screen keeps every token that processing can put among the k highest, and few others', () => {
  const [vocab, width] = [3000, 128];
  const u = seededRandom(9);
  const w = new Float32Array(vocab * width).map(() => (u() - 0.5) * 0.2);
  const screen = new OutputScreen(w, vocab, width);
  const approx = new Float32Array(vocab);
  const exact = new Float32Array(vocab);
  for (let trial = 0; trial < 40; trial++) {
    const h = hostileInput(width, 500 + trial);
    const bound = screen.bound(h);
    for (let r = 0; r < vocab; r++) {
      let dot = 0;
      for (let i = 0; i < width; i++) dot += w[r * width + i] * h[i];
      approx[r] = dot;
    }
    const rowScale = (r: number) => Math.fround(maxAbs(w.subarray(r * width, (r + 1) * width)) / 127);
    // Any logits the bound allows, out to its very edges.
    for (let r = 0; r < vocab; r++) exact[r] = approx[r] + (trial % 2 ? Math.sign(u() - 0.5) : 2 * u() - 1) * rowScale(r) * bound * 0.999;
    // A penalty on "seen" tokens, a few bans and a temperature: elementwise and order-keeping, as the contract asks.
    const seen = Array.from({ length: 30 }, () => Math.floor(u() * vocab));
    const banned = Array.from({ length: 5 }, () => Math.floor(u() * vocab));
    const process = (scores: Float32Array) => {
      for (const id of seen) scores[id] = scores[id] < 0 ? scores[id] * 1.3 : scores[id] / 1.3;
      for (const id of banned) scores[id] = -Infinity;
      for (let i = 0; i < scores.length; i++) scores[i] /= 0.7;
    };
    for (const keep of [1, 40]) {
      const picked = screen.select(approx, bound, keep, process);
      assert.ok(picked !== null);
      const kept = new Set(picked);
      const processed = Float32Array.from(exact);
      process(processed);
      const kth = kthLargest(processed, keep, new Float32Array(keep));
      for (let r = 0; r < vocab; r++) {
        if (processed[r] >= kth) assert.ok(kept.has(r), `trial ${trial}, keep ${keep}: token ${r} can be among the highest but was screened out`);
      }
      assert.ok(picked.length < vocab / 8, `${picked.length} tokens kept of ${vocab}`);
    }
  }
});

test('the screen steps aside where it cannot help: a bound that is not finite, a NaN, all tokens alike, keep ≥ vocabulary', () => {
  const [vocab, width] = [64, 32];
  const w = new Float32Array(vocab * width).fill(0.01);
  const screen = new OutputScreen(w, vocab, width);
  const h = new Float32Array(width).fill(1);
  const approx = new Float32Array(vocab).fill(0.32);
  const nothing = () => {};
  assert.equal(screen.select(approx, NaN, 1, nothing), null);
  assert.equal(screen.select(approx, screen.bound(h.map((v, i) => (i === 3 ? Infinity : v))), 1, nothing), null);
  assert.equal(screen.select(approx.map((v, i) => (i === 9 ? NaN : v)), screen.bound(h), 1, nothing), null);
  assert.equal(screen.select(approx, screen.bound(h), 1, nothing), null, 'every token tied: screening would keep them all');
  assert.equal(screen.select(approx, screen.bound(h), vocab, nothing), null);
  const clear = approx.map((v, i) => (i === 17 ? 5 : v));
  assert.deepEqual([...screen.select(clear, screen.bound(h), 1, nothing)!], [17]);
});

// Wide enough that the products are split between two threads; a vocabulary large enough to screen.
const CONFIG = { nLayer: 2, nEmbd: 256, nHead: 4, vocabSize: 4000, nPositions: 256 };

/** A screen for greedy decoding or top-k, with no processing. */
const screenOf = (keep: number): LogitsScreen => ({ keep, key: `${keep}`, process: () => {} });

/** Logits of a prompt and then `steps` single tokens for a batch of `rows`, with or without a screen. */
function passes(model: GPT2Model, rows: number, steps: number, screen: LogitsScreen | undefined): Float32Array[] {
  const cache = model.createCache(rows);
  const out: Float32Array[] = [];
  try {
    const prompt = Array.from({ length: rows }, (_, b) => Array.from({ length: 24 }, (_, i) => (i * 37 + b * 11 + 5) % CONFIG.vocabSize));
    for (let s = 0; s <= steps; s++) {
      const tokens = s === 0 ? prompt : prompt.map((_, b) => [(s * 31 + b * 7) % CONFIG.vocabSize]);
      const logits = model.forward(tokens, cache, { screen });
      out.push(logits.dataSync() as Float32Array);
      logits.dispose();
    }
  } finally {
    cache.dispose();
  }
  return out;
}

for (const threads of [1, 2]) {
  test(`${threads} thread${threads > 1 ? 's' : ''}: a screened pass (one or two rows) returns the full layer's logits, bit for bit, for every token it keeps and −∞ for the rest`, async () => {
    const screened = createRandomModel(CONFIG, 21, { threads, screen: true });
    const full = createRandomModel(CONFIG, 21, { threads, screen: false });
    try {
      await Promise.all([screened.threadsReady, full.threadsReady]);
      assert.equal(screened.threads, threads);
      assert.equal(screened.screened, true);
      assert.equal(full.screened, false);
      for (const [rows, keep] of [[1, 1], [2, 40]]) {
        const a = passes(screened, rows, 4, screenOf(keep));
        const b = passes(full, rows, 4, undefined);
        const V = CONFIG.vocabSize;
        for (let p = 0; p < a.length; p++) {
          for (let r = 0; r < rows; r++) {
            const [got, want] = [a[p].subarray(r * V, (r + 1) * V), b[p].subarray(r * V, (r + 1) * V)];
            const kept = got.reduce((n, v) => n + (v === -Infinity ? 0 : 1), 0);
            assert.ok(kept >= keep && kept < V / 8, `pass ${p} row ${r}: ${kept} logits kept`);
            for (let i = 0; i < V; i++) if (got[i] !== -Infinity) assert.equal(got[i], want[i], `pass ${p} row ${r} token ${i}`);
            const top = kthLargest(want, keep, new Float32Array(keep));
            for (let i = 0; i < V; i++) if (want[i] >= top) assert.equal(got[i], want[i], `pass ${p} row ${r}: token ${i} is among the ${keep} highest`);
          }
        }
      }
      // Asked for no screen, or for three rows (where int8 no longer pays, see decode.ts), the layer runs whole.
      assert.ok(passes(screened, 1, 1, undefined).every((l) => l.every(Number.isFinite)));
      assert.ok(passes(screened, 3, 1, screenOf(1)).every((l) => l.every(Number.isFinite)));
    } finally {
      screened.dispose();
      full.dispose();
    }
  });
}

test('screened generation gives the same tokens as the full layer, greedy and top-k sampling with penalties, bans and several sequences', async () => {
  const tok = new FakeTokenizer([]);
  const config = { ...CONFIG, vocabSize: 3000, eosTokenId: 0 };
  const screened = createRandomModel(config, 5, { threads: 2, screen: true });
  const full = createRandomModel(config, 5, { threads: 2, screen: false });
  try {
    await Promise.all([screened.threadsReady, full.threadsReady]);
    const prompt = Array.from({ length: 30 }, (_, i) => (i * 53 + 7) % 256);
    for (const options of [
      { maxNewTokens: 16, repetitionPenalty: 1.3, noRepeatNgramSize: 2 },
      { maxNewTokens: 16, doSample: true, topK: 40, temperature: 0.8, topP: 0.95, repetitionPenalty: 1.2, noRepeatNgramSize: 3, numReturnSequences: 3, seed: 11 },
    ]) {
      const a = await generate(screened, tok, prompt, options);
      const b = await generate(full, tok, prompt, options);
      assert.deepEqual(a.sequences.map((s) => s.ids), b.sequences.map((s) => s.ids));
    }
  } finally {
    screened.dispose();
    full.dispose();
  }
});

test('the screen leaves no tensor or backend buffer behind per token, and counts its int8 copy', async () => {
  const screened = createRandomModel(CONFIG, 8, { threads: 2, screen: true });
  const full = createRandomModel(CONFIG, 8, { threads: 2, screen: false });
  try {
    await Promise.all([screened.threadsReady, full.threadsReady]);
    const int8Bytes = CONFIG.vocabSize * CONFIG.nEmbd * (1 + 4 / 32);
    const more = screened.extraBytes - full.extraBytes;
    // Plus this side's scratch for quantizing and multiplying (its inputs and outputs, ~100 KB here).
    assert.ok(more >= int8Bytes && more < int8Bytes + 256 * 1024, `${more} bytes beyond the full model's extra, int8 copy ${int8Bytes}`);
    const cache = screened.createCache(1);
    const step = (id: number) => screened.forward([[id]], cache, { screen: screenOf(1) }).dispose();
    step(1);
    step(2);
    const before = tf.memory();
    for (let i = 0; i < 10; i++) step(3 + i);
    const after = tf.memory();
    assert.equal(after.numTensors, before.numTensors);
    assert.equal(after.numBytes, before.numBytes);
    cache.dispose();
  } finally {
    screened.dispose();
    full.dispose();
  }
});

test('no screen where it cannot be exact or cannot pay: an untied output layer, a width that int8 groups do not divide', async () => {
  const untied = createRandomModel({ ...CONFIG, tieWordEmbeddings: false }, 4, { threads: 1, screen: true });
  const odd = createRandomModel({ ...CONFIG, nEmbd: 40, nHead: 4 }, 4, { threads: 1, screen: true });
  try {
    await Promise.all([untied.threadsReady, odd.threadsReady]);
    assert.equal(untied.screened, false);
    assert.equal(odd.screened, false);
    for (const model of [untied, odd]) {
      const logits = passes(model, 1, 1, screenOf(1));
      assert.ok(logits.every((l) => l.every(Number.isFinite)), 'every logit computed');
    }
  } finally {
    untied.dispose();
    odd.dispose();
  }
});
