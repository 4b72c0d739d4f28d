import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measureCeiling, probeBytes } from '../../bench/machine-ceiling.js';
import { decodeBytesPerToken, prefillFlops } from '../../bench/model-work.js';
import { gpt2SmallConfig } from '../../bench/random-checkpoint.js';
import { relaxedSimdValidates } from '../../worker/model/kernels/f32/f32.js';

const small = gpt2SmallConfig;
const matrixWeights = small.nLayer * (768 * 2304 + 768 * 768 + 2 * 768 * 3072) + 50257 * 768;

test('a one-token prefill multiplies every matrix weight once, and attends one position a layer', () => {
  assert.equal(matrixWeights, 123_532_032);
  assert.equal(prefillFlops(small, 1), 2 * matrixWeights + small.nLayer * 4 * 768);
});

test('a 128-token prefill: every position through 11 blocks and the last block’s c_attn, the rest for the last position', () => {
  const block = 768 * 2304 + 768 * 768 + 2 * 768 * 3072;
  const everyPosition = 2 * 128 * (11 * block + 768 * 2304);
  const lastPosition = 2 * (768 * 768 + 2 * 768 * 3072) + 2 * 768 * 50257;
  const attention = 12 * 2 * 2 * 768 * ((128 * 129) / 2);
  assert.equal(prefillFlops(small, 128), everyPosition + lastPosition + attention);
  assert.ok(Math.abs(prefillFlops(small, 128) / 1e9 - 20.78) < 0.01);
});

test('a decode step reads every matrix once (4 bytes a weight exact, 1 + 4/32 fast) and every cached key and value', () => {
  assert.equal(decodeBytesPerToken(small, 'exact', 0), 4 * matrixWeights);
  assert.equal(decodeBytesPerToken(small, 'fast', 0), 1.125 * matrixWeights);
  assert.equal(decodeBytesPerToken(small, 'exact', 11) - decodeBytesPerToken(small, 'exact', 10), 12 * 2 * 768 * 4);
  // Screened: the output layer (wte, 50257 × 768) in int8, the blocks still float32.
  assert.equal(decodeBytesPerToken(small, 'exact', 0) - decodeBytesPerToken(small, 'exact', 0, true), 50257 * 768 * (4 - 1.125));
});

test('the probes do the work they are timed for', async () => {
  const bytes = await probeBytes();
  assert.ok(relaxedSimdValidates(bytes), 'relaxed SIMD (the kernels turn it on in Node 20)');
  const memory = new WebAssembly.Memory({ initial: 3, maximum: 3, shared: true });
  const probes = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as unknown as {
    fma(n: number): number;
    tile(passes: number): number;
    read(from: number, to: number): number;
  };
  const floats = new Float32Array(memory.buffer);
  // Small integers: their float32 sums are exact in any order.
  for (let i = 65536 / 4; i < floats.length; i++) floats[i] = i % 7;
  let expected = 0;
  for (let i = 65536 / 4; i < floats.length; i++) expected += floats[i];
  assert.equal(probes.read(65536, 3 * 65536), expected);
  assert.equal(probes.read(65536, 65536), 0);
  floats.fill(0.5, 0, 8); // a ← a·0.5 + 0.5 from 0: 0.5, 0.75, …
  assert.equal(probes.fma(2), 10 * 0.75);
  // The tile's x block and panel all 1: each of 8 accumulators gets 256 steps × 1 × 1 a pass.
  floats.fill(1, 4096 / 4, 16384 / 4);
  assert.equal(probes.tile(3), 2 * 4 * 256 * 3);
});

test('the machine ceilings come out finite and positive with one thread and with two', async () => {
  for (const threads of [1, 2]) {
    const c = await measureCeiling(threads, { trials: 1, computeMs: 2, readBytes: 2 ** 20 });
    assert.equal(c.threads, threads);
    for (const value of [c.fma_gflops, c.tile_gflops, c.read_gb_per_s]) assert.ok(Number.isFinite(value) && value > 0, JSON.stringify(c));
  }
});
