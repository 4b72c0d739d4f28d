/** Shared by the model tests: fixture locations, the wasm backend, throw-away model folders. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../worker/backend.js';
import { gpt2ConfigToJson, type ParsedGPT2Config } from '../../worker/model/config.js';
import { writeSafetensors, type TensorToWrite } from '../../worker/model/safetensors.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
export const tinyGpt2 = path.join(sharedDir, 'fixtures', 'tiny-gpt2');
export const tinyGpt2F16 = path.join(sharedDir, 'fixtures', 'tiny-gpt2-f16');

export async function useWasm(): Promise<void> {
  const { name } = await initBackend('wasm');
  if (name !== 'wasm') throw new Error(`tests need the wasm backend, got ${name}`);
}

/** A fresh temporary folder, removed when the process exits. */
export function tempDir(label: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `inkling-${label}-`));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a Hugging Face–style GPT-2 folder; `configOverrides` are raw config.json fields. */
export async function writeModelFolder(
  dir: string,
  config: ParsedGPT2Config,
  tensors: Record<string, TensorToWrite>,
  configOverrides: Record<string, unknown> = {},
): Promise<string> {
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...gpt2ConfigToJson(config), ...configOverrides }));
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  return dir;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
