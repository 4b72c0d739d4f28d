// The forward pass against the fixtures' float64 reference outputs (see the fixtures' READMEs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Model } from '../../worker/model/gpt2.js';
import { loadModel } from '../../worker/model/load.js';
import { tinyGpt2, tinyGpt2F16, useWasm } from './helpers.js';

const TOLERANCE = 1e-4;

interface ReferenceCase {
  name: string;
  prompt_ids: number[];
  logits_at_fixed_ids: number[][];
  last_position_top20: [number, number][];
  last_position_logsumexp: number;
  last_position_logits_mean: number;
  last_position_logits_std: number;
  greedy_continuation: number[];
  greedy_step_logits_at_fixed_ids: number[][];
}
interface Reference {
  fixed_token_ids: number[];
  cases: ReferenceCase[];
}

function assertClose(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= TOLERANCE, `${what}: got ${actual}, expected ${expected}`);
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Logits of `ids` run from scratch: [time, vocab] rows. */
function wholeSequence(model: GPT2Model, ids: number[]): Float32Array {
  const cache = model.createCache(1);
  const logits = model.forward([ids], cache, { allPositions: true });
  const data = logits.dataSync() as Float32Array;
  logits.dispose();
  cache.dispose();
  return data;
}

before(useWasm);

for (const [label, dir] of [
  ['tiny-gpt2 (F32)', tinyGpt2],
  ['tiny-gpt2-f16 (F16)', tinyGpt2F16],
] as const) {
  describe(label, () => {
    const reference = JSON.parse(readFileSync(path.join(dir, 'reference.json'), 'utf8')) as Reference;
    const fixed = reference.fixed_token_ids;
    let model: GPT2Model;
    before(async () => {
      model = await loadModel(dir);
    });
    after(() => model.dispose());

    for (const c of reference.cases) {
      test(`${c.name}: every prompt position, whole sequence`, () => {
        const vocab = model.config.vocabSize;
        const logits = wholeSequence(model, c.prompt_ids);
        assert.equal(logits.length, c.prompt_ids.length * vocab);
        c.logits_at_fixed_ids.forEach((row, t) =>
          row.forEach((expected, j) => assertClose(logits[t * vocab + fixed[j]], expected, `position ${t}, id ${fixed[j]}`)),
        );
      });

      test(`${c.name}: last position top-20, log-sum-exp, mean and std`, () => {
        const cache = model.createCache(1);
        const logits = model.forward([c.prompt_ids], cache);
        assert.deepEqual(logits.shape, [1, model.config.vocabSize]);
        const row = logits.dataSync() as Float32Array;
        logits.dispose();
        cache.dispose();

        const top = [...row].map((v, id) => [id, v] as const).sort((a, b) => b[1] - a[1]).slice(0, 20);
        top.forEach(([, v], i) => assertClose(v, c.last_position_top20[i][1], `top-20 value #${i}`));
        for (const [id, v] of c.last_position_top20) assertClose(row[id], v, `logit of top-20 id ${id}`);

        let max = -Infinity;
        let sum = 0;
        for (const v of row) {
          max = Math.max(max, v);
          sum += v;
        }
        const mean = sum / row.length;
        let expSum = 0;
        let squares = 0;
        for (const v of row) {
          expSum += Math.exp(v - max);
          squares += (v - mean) ** 2;
        }
        assertClose(max + Math.log(expSum), c.last_position_logsumexp, 'log-sum-exp');
        assertClose(mean, c.last_position_logits_mean, 'mean');
        assertClose(Math.sqrt(squares / row.length), c.last_position_logits_std, 'std');
      });

      test(`${c.name}: greedy decoding step by step through the KV cache`, () => {
        const cache = model.createCache(1);
        let logits = model.forward([c.prompt_ids], cache);
        const generated: number[] = [];
        for (let step = 0; step < c.greedy_continuation.length; step++) {
          const row = logits.dataSync() as Float32Array;
          logits.dispose();
          c.greedy_step_logits_at_fixed_ids[step].forEach((expected, j) =>
            assertClose(row[fixed[j]], expected, `step ${step}, id ${fixed[j]}`),
          );
          const next = argmax(row);
          generated.push(next);
          assert.equal(cache.length, c.prompt_ids.length + step);
          logits = model.forward([[next]], cache);
        }
        logits.dispose();
        cache.dispose();
        assert.deepEqual(generated, c.greedy_continuation);
      });

      test(`${c.name}: greedy decoding recomputing the whole sequence gives the same tokens`, () => {
        const ids = [...c.prompt_ids];
        const vocab = model.config.vocabSize;
        for (let step = 0; step < c.greedy_continuation.length; step++) {
          const logits = wholeSequence(model, ids);
          const last = logits.subarray((ids.length - 1) * vocab);
          c.greedy_step_logits_at_fixed_ids[step].forEach((expected, j) =>
            assertClose(last[fixed[j]], expected, `step ${step}, id ${fixed[j]}`),
          );
          ids.push(argmax(last));
        }
        assert.deepEqual(ids.slice(c.prompt_ids.length), c.greedy_continuation);
      });
    }

    test('the cache accepts a prompt in pieces: logits match the whole-sequence run', () => {
      const ids = reference.cases.find((c) => c.prompt_ids.length >= 10)!.prompt_ids;
      const vocab = model.config.vocabSize;
      const whole = wholeSequence(model, ids);
      const cache = model.createCache(1);
      const pieces = [ids.slice(0, 4), ids.slice(4, 5), ids.slice(5)];
      let offset = 0;
      for (const piece of pieces) {
        const logits = model.forward([piece], cache, { allPositions: true });
        assert.deepEqual(logits.shape, [1, piece.length, vocab]);
        const data = logits.dataSync();
        logits.dispose();
        let diff = 0;
        for (let i = 0; i < data.length; i++) diff = Math.max(diff, Math.abs(data[i] - whole[offset * vocab + i]));
        assert.ok(diff < 1e-5, `piece at ${offset}: max difference ${diff}`);
        offset += piece.length;
      }
      cache.dispose();
      assert.equal(tf.memory().numTensors, countParams(model));
    });
  });
}

/** wte, wpe, 12 per block, ln_f's 2, and the output layer where it is a tensor of its own. */
function countParams(model: GPT2Model): number {
  return 2 + model.config.nLayer * 12 + 2 + (model.params.lmHead ? 1 : 0);
}
