/**
 * A trained classifier on disk, a folder like any checkpoint: `config.json` (labels, method, adapters, the
 * base model it reads and that model's fingerprint) and `classifier.safetensors` (`score.weight`
 * `[n_labels, n_embd]` and `score.bias` as Hugging Face would name them, plus LoRA tensors under the trainer's names).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../model/load.js';
import { SafetensorsReader, writeSafetensors, type TensorToWrite } from '../model/safetensors.js';
import type { GPT2Config } from '../model/types.js';
import { loadTokenizer } from '../tokenizer/index.js';
import type { ParamMap } from '../train/forward.js';
import { checkLoraConfig } from '../train/lora.js';
import { paramMapOf } from '../train/params.js';
import { ClassifierError, TrainedClassifier, type ClassifierEvaluation, type ClassifierSpec } from './trained.js';

export const CLASSIFIER_FORMAT = 'inkling-classifier';
export const CLASSIFIER_VERSION = 1;
const CONFIG_FILE = 'config.json';
const TENSORS_FILE = 'classifier.safetensors';

export interface ClassifierConfigJson extends ClassifierSpec {
  format: typeof CLASSIFIER_FORMAT;
  version: typeof CLASSIFIER_VERSION;
  architecture: 'GPT2ForSequenceClassification';
  pooling: 'last-token';
  id2label: Record<string, string>;
  label2id: Record<string, number>;
  baseModel: { path: string; fingerprint: string };
  evaluation: ClassifierEvaluation | null;
  createdAt: string;
}

/**
 * Identifies base weights cheaply: the shape and the values of the small LayerNorm tensors, which differ
 * between any two models that differ at all in practice.
 */
export function baseFingerprint(config: GPT2Config, params: ParamMap): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
  };
  [config.vocabSize, config.nPositions, config.nEmbd, config.nLayer, config.nHead, config.nInner].forEach(mix);
  for (const name of ['ln_f.weight', 'ln_f.bias', 'h.0.ln_1.weight', 'h.0.ln_1.bias']) {
    const values = params[name].dataSync() as Float32Array;
    for (const word of new Uint32Array(values.buffer, values.byteOffset, values.length)) mix(word);
  }
  return h.toString(16).padStart(8, '0');
}

/** Writes the classifier to `dir`; `baseModelDir` is recorded (absolute) so that loading finds the base. */
export async function saveClassifier(
  dir: string,
  classifier: TrainedClassifier,
  baseModelDir: string,
  evaluation: ClassifierEvaluation | null = null,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  const add = async (name: string, t: tf.Tensor) => {
    tensors[name] = { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array };
  };
  await add('score.weight', classifier.head);
  await add('score.bias', classifier.bias);
  for (const [name, t] of classifier.adapters) await add(name, t);
  await writeSafetensors(path.join(dir, TENSORS_FILE), tensors, { format: CLASSIFIER_FORMAT });
  const { labels } = classifier.spec;
  const json: ClassifierConfigJson = {
    format: CLASSIFIER_FORMAT,
    version: CLASSIFIER_VERSION,
    architecture: 'GPT2ForSequenceClassification',
    pooling: 'last-token',
    ...classifier.spec,
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
    baseModel: { path: path.resolve(baseModelDir), fingerprint: baseFingerprint(classifier.config, classifier.base) },
    evaluation,
    createdAt: new Date().toISOString(),
  };
  await writeFile(path.join(dir, CONFIG_FILE), JSON.stringify(json, null, 2) + '\n');
}

export async function readClassifierConfig(dir: string): Promise<ClassifierConfigJson> {
  const file = path.join(dir, CONFIG_FILE);
  let json: ClassifierConfigJson;
  try {
    json = JSON.parse(await readFile(file, 'utf8')) as ClassifierConfigJson;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ClassifierError(code === 'ENOENT' ? `${dir} is not a classifier folder (no ${CONFIG_FILE})` : `${file}: ${(error as Error).message}`);
  }
  if (json.format !== CLASSIFIER_FORMAT) throw new ClassifierError(`${file} is not an Inkling classifier (format "${String(json.format)}")`);
  if (json.version !== CLASSIFIER_VERSION) throw new ClassifierError(`${file}: classifier version ${String(json.version)} is not supported`);
  if (!Array.isArray(json.labels) || json.labels.length < 2) throw new ClassifierError(`${file}: needs at least two labels`);
  if (json.method !== 'head' && json.method !== 'lora') throw new ClassifierError(`${file}: unknown method "${String(json.method)}"`);
  if (json.method === 'lora') {
    if (!json.lora) throw new ClassifierError(`${file}: method lora without adapter settings`);
    checkLoraConfig(json.lora);
  }
  return json;
}

export interface LoadClassifierOptions {
  /** Base model folder to use instead of the one recorded (it must be the same weights). */
  modelDir?: string;
}

/** Loads a classifier and its base model (the classifier owns it: dispose() frees both). */
export async function loadClassifier(dir: string, options: LoadClassifierOptions = {}): Promise<TrainedClassifier> {
  const json = await readClassifierConfig(dir);
  const baseDir = options.modelDir ?? json.baseModel.path;
  const model = await loadModel(baseDir).catch((error: Error) => {
    throw new ClassifierError(`the classifier's base model ${baseDir} could not be loaded: ${error.message.split('\n')[0]}`);
  });
  try {
    const base = paramMapOf(model.params);
    if (baseFingerprint(model.config, base) !== json.baseModel.fingerprint) {
      throw new ClassifierError(`${baseDir} is not the model the classifier in ${dir} was trained on`);
    }
    const tokenizer = await loadTokenizer(baseDir);
    const reader = SafetensorsReader.open(path.join(dir, TENSORS_FILE));
    const tensors = new Map<string, tf.Tensor>();
    try {
      for (const [name, info] of reader.tensors) tensors.set(name, tf.tensor(reader.readFloat32(name), info.shape, 'float32'));
    } finally {
      reader.close();
    }
    const head = tensors.get('score.weight');
    const bias = tensors.get('score.bias');
    if (head === undefined || bias === undefined) {
      for (const t of tensors.values()) t.dispose();
      throw new ClassifierError(`${dir}/${TENSORS_FILE} has no score.weight and score.bias`);
    }
    tensors.delete('score.weight');
    tensors.delete('score.bias');
    const spec: ClassifierSpec = { labels: json.labels, method: json.method, lora: json.lora, maxLength: json.maxLength, padTokenId: json.padTokenId };
    try {
      return new TrainedClassifier(model.config, base, tokenizer, spec, head as tf.Tensor2D, bias as tf.Tensor1D, tensors, model);
    } catch (error) {
      head.dispose();
      bias.dispose();
      for (const t of tensors.values()) t.dispose();
      throw error;
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
}
