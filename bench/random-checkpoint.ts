/** The GPT-2-small-shaped checkpoint with random weights that benchmarks run on (made once, never committed). */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { completeGPT2Config, gpt2ConfigToJson } from '../worker/model/config.js';
import { randomWeights } from '../worker/model/random.js';
import { writeSafetensors } from '../worker/model/safetensors.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const gpt2SmallRandomDir = path.join(repoRoot, '.bench', 'gpt2-small-random');
/** GPT-2 small (124M parameters), the shape of that checkpoint. */
export const gpt2SmallConfig = completeGPT2Config({});

/** Writes .bench/gpt2-small-random (124M parameters, float32) unless it is already there. */
export async function ensureGpt2SmallRandom(): Promise<string> {
  const dir = gpt2SmallRandomDir;
  if (existsSync(path.join(dir, 'model.safetensors')) && existsSync(path.join(dir, 'config.json'))) return dir;
  mkdirSync(dir, { recursive: true });
  await writeSafetensors(path.join(dir, 'model.safetensors'), randomWeights(gpt2SmallConfig, 1234), { format: 'pt' });
  // config.json last: its presence marks a complete checkpoint.
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(gpt2ConfigToJson(gpt2SmallConfig), null, 2));
  return dir;
}
