/** Shared by the training tests: fixtures, the wasm backend, tiny models and a byte-level tokenizer. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../worker/backend.js';
import { completeGPT2Config } from '../../worker/model/config.js';
import { loadModel } from '../../worker/model/load.js';
import { createRandomModel } from '../../worker/model/random.js';
import type { GPT2Config } from '../../worker/model/types.js';
import type { Tokenizer } from '../../worker/tokenizer/types.js';
import { paramMapOf } from '../../worker/train/params.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
export const tinyGpt2 = path.join(sharedDir, 'fixtures', 'tiny-gpt2');

export async function useWasm(): Promise<void> {
  const { name } = await initBackend('wasm');
  if (name !== 'wasm') throw new Error(`tests need the wasm backend, got ${name}`);
}

const tempDirs: string[] = [];

/** A fresh folder, removed when the test process exits (one exit listener for all of them). */
export function tempDir(label: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `inkling-${label}-`));
  if (tempDirs.length === 0) process.on('exit', () => tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  tempDirs.push(dir);
  return dir;
}

export interface TestModel {
  config: GPT2Config;
  params: Record<string, tf.Tensor>;
  dispose(): void;
}

/** The tiny-gpt2 fixture (vocabulary 50257, width 32, 2 layers, 64 positions). */
export async function loadTiny(): Promise<TestModel> {
  const model = await loadModel(tinyGpt2);
  return { config: model.config, params: paramMapOf(model.params), dispose: () => model.dispose() };
}

/** A GPT-2 with random weights (GPT-2 initialisation) of the given shape. */
export function randomModel(shape: Partial<GPT2Config>, seed = 1): TestModel {
  const model = createRandomModel(shape, seed);
  return { config: model.config, params: paramMapOf(model.params), dispose: () => model.dispose() };
}

export function tinyByteConfig(overrides: Partial<GPT2Config> = {}): GPT2Config {
  return completeGPT2Config({
    vocabSize: 257,
    nPositions: 32,
    nEmbd: 32,
    nLayer: 2,
    nHead: 2,
    bosTokenId: 256,
    eosTokenId: 256,
    ...overrides,
  });
}

/** UTF-8 bytes as tokens 0–255, end-of-text 256: a vocabulary small enough for a model trained in seconds. */
export function byteTokenizer(): Tokenizer {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  return {
    vocabSize: 257,
    eosTokenId: 256,
    encode: (text) => [...encoder.encode(text)],
    decode: (ids) => decoder.decode(new Uint8Array(ids.filter((id) => id < 256))),
    tokenBytes: (id) => (id < 256 ? new Uint8Array([id]) : encoder.encode('<|endoftext|>')),
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
