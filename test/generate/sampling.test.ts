import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Xoshiro128, argmax, sampleFromScores } from '../../worker/generate/sampling.js';

test('the generator is reproducible by seed and differs between seeds', () => {
  const draw = (seed: number) => {
    const r = new Xoshiro128(seed);
    return Array.from({ length: 8 }, () => r.nextUint32());
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
  const r = new Xoshiro128(0);
  for (let i = 0; i < 1000; i++) {
    const x = r.nextFloat();
    assert.ok(x >= 0 && x < 1);
  }
});

test('argmax takes the first of tied maxima', () => {
  assert.equal(argmax(Float32Array.from([1, 3, 2, 3])), 1);
  assert.equal(argmax(Float32Array.from([-Infinity, -5, -Infinity])), 1);
});

test('sampling follows softmax(scores) and never picks a filtered token', () => {
  const random = new Xoshiro128(123);
  const probs = [0.6, 0.3, 0.1, 0];
  const counts = [0, 0, 0, 0];
  const draws = 20_000;
  for (let i = 0; i < draws; i++) {
    const scores = Float32Array.from(probs.map((p) => (p === 0 ? -Infinity : Math.log(p) + 3)));
    counts[sampleFromScores(scores, random)]++;
  }
  assert.equal(counts[3], 0);
  // Binomial standard deviation at 20 000 draws is ≤ 0.0035; allow about 4σ.
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(counts[i] / draws - probs[i]) < 0.015, `token ${i}: ${counts[i]}`);
});

test('sampling refuses a row where every token was filtered out', () => {
  assert.throws(() => sampleFromScores(Float32Array.from([-Infinity, -Infinity]), new Xoshiro128(1)), /filtered out/);
});
