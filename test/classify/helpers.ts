/** Shared by the classification tests: the tiny fixture, the wasm backend, and a fixture with a skewed prior. */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../worker/backend.js';
import { SafetensorsReader, writeSafetensors, type TensorToWrite } from '../../worker/model/safetensors.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
export const tinyGpt2 = path.join(sharedDir, 'fixtures', 'tiny-gpt2');

export async function useWasm(): Promise<void> {
  const { name } = await initBackend('wasm');
  if (name !== 'wasm') throw new Error(`tests need the wasm backend, got ${name}`);
}

export function tempDir(label: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `inkling-${label}-`));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A copy of the tiny fixture whose every prediction prefers token `favoured` over token `against` by
 * `margin` more nats than the fixture does, whatever the input: a strong prior for one word.
 *
 * The output layer is tied to `wte`, so logits = h · wteᵀ with h = LayerNorm(x)·g + b (ln_f). Adding a
 * vector e to ln_f's bias b adds the same e · wteᵀ to the logits at every position. With
 * e = margin · d / |d|², d = wte[favoured] − wte[against], the logit difference of the two grows by exactly
 * `margin`; log-softmax differences equal logit differences, so their log-probabilities move the same way.
 * With no `against`, d = wte[favoured]: its logit grows by `margin` (others by their overlap with it).
 */
export async function writeSkewedModel(favoured: number, against: number | null, margin: number): Promise<string> {
  const dir = tempDir('skewed');
  copyFileSync(path.join(tinyGpt2, 'config.json'), path.join(dir, 'config.json'));
  const reader = SafetensorsReader.open(path.join(tinyGpt2, 'model.safetensors'));
  const tensors: Record<string, TensorToWrite> = {};
  try {
    for (const [name, info] of reader.tensors) tensors[name] = { dtype: 'F32', shape: [...info.shape], data: reader.readFloat32(name) };
  } finally {
    reader.close();
  }
  const wte = tensors['wte.weight'];
  const width = wte.shape[1];
  const row = (id: number) => wte.data.subarray(id * width, (id + 1) * width);
  const d = Float32Array.from(row(favoured), (x, i) => x - (against === null ? 0 : row(against)[i]));
  const norm2 = d.reduce((s, x) => s + x * x, 0);
  const bias = tensors['ln_f.bias'].data;
  for (let i = 0; i < width; i++) bias[i] += (margin * d[i]) / norm2;
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  return dir;
}
