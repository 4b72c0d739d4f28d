/**
 * Writes a trained model as a Hugging Face GPT-2 folder — `config.json` + `model.safetensors` under GPT-2's
 * own tensor names, Conv1D weights `[in, out]`, output layer tied to `wte` — that `loadModel` and
 * transformers' `GPT2LMHeadModel.from_pretrained` both load.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { gpt2ConfigToJson } from '../model/config.js';
import { writeSafetensors, type TensorToWrite } from '../model/safetensors.js';
import type { GPT2Config } from '../model/types.js';
import { gpt2TensorShapes } from '../model/weights.js';
import { checkParams, type ParamMap } from './forward.js';
import type { TrainedWeights } from './weights.js';

export interface ExportOptions {
  /** Copy the tokenizer files (tokenizer.json, vocab.json, merges.txt, …) found in this folder. */
  tokenizerFrom?: string;
  /** Weight precision; float32 by default (exact). */
  dtype?: 'F32' | 'F16';
}

const TOKENIZER_FILES = ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'];

export async function exportHuggingFace(dir: string, config: GPT2Config, params: ParamMap, options: ExportOptions = {}): Promise<void> {
  checkParams(params, config);
  await mkdir(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, shape] of gpt2TensorShapes(config)) {
    tensors[name] = { dtype: options.dtype ?? 'F32', shape, data: (await params[name].data()) as Float32Array };
  }
  // transformers refuses a safetensors file whose metadata does not name its framework.
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const json = { ...gpt2ConfigToJson({ ...config, tieWordEmbeddings: true }), torch_dtype: options.dtype === 'F16' ? 'float16' : 'float32' };
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(json, null, 2) + '\n');
  if (options.tokenizerFrom) {
    for (const file of TOKENIZER_FILES) {
      const source = path.join(options.tokenizerFrom, file);
      if (existsSync(source)) await copyFile(source, path.join(dir, file));
    }
  }
}

/** Exports the model a run produced: adapters merged into `base` (LoRA), or the trained weights (full). */
export async function exportTrainedModel(
  dir: string,
  config: GPT2Config,
  base: ParamMap,
  weights: TrainedWeights,
  options: ExportOptions = {},
): Promise<void> {
  await weights.withModelParams(base, (params) => exportHuggingFace(dir, config, params, options));
}
