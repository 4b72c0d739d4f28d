/** Loads a Hugging Face GPT-2 folder (`config.json` + `model.safetensors`) into a GPT2Model. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { parseGPT2Config, type ParsedGPT2Config } from './config.js';
import { ModelFormatError } from './errors.js';
import { GPT2Model, type GPT2ModelOptions } from './gpt2.js';
import { currentBackendMemory } from './kernels/backend-memory.js';
import { SafetensorsReader } from './safetensors.js';
import type { GPT2Config } from './types.js';
import { gpt2TensorShapes, paramsFromWeights } from './weights.js';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);
/** Causal-mask buffers that older transformers versions saved with the weights; we build the mask ourselves. */
const IGNORED_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;
/** The largest WebAssembly memory (32-bit addresses), less a little for everything that is not weights. */
const WASM_MEMORY_LIMIT = 4294901760 - 256 * 2 ** 20;

export async function readGPT2Config(dir: string): Promise<ParsedGPT2Config> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ModelFormatError('missing_file', `${path}: file not found (a GPT-2 folder needs config.json)`);
    }
    throw cause;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ModelFormatError('invalid_config', `${path}: not valid JSON (${(cause as Error).message})`);
  }
  return parseGPT2Config(raw);
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Maps each expected tensor name to the name stored in the file (with or without the `transformer.` prefix)
 * and checks every shape and dtype against the config before any weight is read.
 */
function resolveTensorNames(reader: SafetensorsReader, config: ParsedGPT2Config): { names: Map<string, string>; lmHead: string | null } {
  const where = reader.label;
  const stored = new Map<string, string>();
  for (const name of reader.tensors.keys()) {
    const canonical = name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
    const layer = /^h\.(\d+)\./.exec(canonical);
    if (layer && Number(layer[1]) >= config.nLayer) {
      throw new ModelFormatError(
        'config_mismatch',
        `${where}: has tensor '${name}' of layer ${layer[1]}, but config.json says n_layer = ${config.nLayer}`,
        name,
      );
    }
    if (!IGNORED_BUFFER.test(canonical)) stored.set(canonical, name);
  }

  const expected = gpt2TensorShapes(config);
  const shapeFields =
    `vocab_size ${config.vocabSize}, n_positions ${config.nPositions}, n_embd ${config.nEmbd}, n_inner ${config.nInner}`;
  const check = (canonical: string, shape: number[]): string => {
    const name = stored.get(canonical);
    if (name === undefined) {
      const layer = /^h\.(\d+)\./.exec(canonical);
      if (layer && ![...stored.keys()].some((n) => n.startsWith(`h.${layer[1]}.`))) {
        throw new ModelFormatError(
          'config_mismatch',
          `${where}: config.json says n_layer = ${config.nLayer}, but the file has no tensors for layer ${layer[1]}`,
          canonical,
        );
      }
      throw new ModelFormatError('missing_tensor', `${where}: tensor '${canonical}' is missing`, canonical);
    }
    const info = reader.info(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFormatError(
        'shape_mismatch',
        `${where}: tensor '${name}' has shape ${shapeText(info.shape)}, but config.json (${shapeFields}) needs ${shapeText(shape)}`,
        name,
      );
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new ModelFormatError(
        'unsupported_dtype',
        `${where}: tensor '${name}' has dtype ${info.dtype}; weights must be F32, F16 or BF16`,
        name,
      );
    }
    return name;
  };

  const names = new Map<string, string>();
  for (const [canonical, shape] of expected) names.set(canonical, check(canonical, shape));
  let lmHead: string | null = null;
  if (!config.tieWordEmbeddings) {
    // Tied models (every released GPT-2) reuse wte even when the file also holds a copy as lm_head.weight.
    if (!stored.has('lm_head.weight')) {
      throw new ModelFormatError(
        'missing_tensor',
        `${where}: tensor 'lm_head.weight' is missing (config.json sets tie_word_embeddings to false)`,
        'lm_head.weight',
      );
    }
    lmHead = check('lm_head.weight', [config.vocabSize, config.nEmbd]);
  }
  return { names, lmHead };
}

/** Refuses, with a clear message, a model the WebAssembly backend's 4 GB memory cannot hold. */
export function assertFitsBackend(config: GPT2Config): void {
  if (tf.getBackend() !== 'wasm') return;
  let parameters = 0;
  let matrices = config.nEmbd * config.vocabSize; // the output layer
  for (const [name, shape] of gpt2TensorShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    parameters += size;
    if (/\.c_(attn|proj|fc)\.weight$/.test(name)) matrices += size;
  }
  // Held: the weights; where tfjs's own kernel (XNNPACK) multiplies, also the repacked copy it keeps of every
  // matrix and a tied output layer's transposed copy (gpt2.ts). Ours read the weights where they lie.
  const ours = currentBackendMemory()?.transposedInPlace ?? false;
  const bytes = 4 * (ours ? parameters : parameters + config.nEmbd * config.vocabSize + matrices);
  if (bytes > WASM_MEMORY_LIMIT) {
    throw new ModelFormatError(
      'too_large_for_backend',
      `this GPT-2 (${(parameters / 1e6).toFixed(0)}M parameters) needs about ${(bytes / 2 ** 30).toFixed(1)} GiB, more than ` +
        `the WebAssembly backend can address (4 GiB); install @tensorflow/tfjs-node to run it natively`,
    );
  }
}

/**
 * Runs one token through the model so that the backend prepares every weight now (wasm's XNNPACK repacks
 * each matrix on first use, seconds for GPT-2 small) rather than during the user's first completion.
 */
function warmUp(model: GPT2Model): void {
  const cache = model.createCache(1);
  try {
    model.forward([[0]], cache).dispose();
  } finally {
    cache.dispose();
  }
}

/** Loads `dir/config.json` and `dir/model.safetensors` (F32, F16 or BF16) onto the current tf backend. */
export async function loadModel(dir: string, options: GPT2ModelOptions = {}): Promise<GPT2Model> {
  const config = await readGPT2Config(dir);
  const weightsPath = join(dir, 'model.safetensors');
  if (!existsSync(weightsPath)) {
    const hint = existsSync(join(dir, 'pytorch_model.bin'))
      ? ' (the folder has pytorch_model.bin; convert it to safetensors first)'
      : '';
    throw new ModelFormatError('missing_file', `${weightsPath}: file not found${hint}`);
  }
  const reader = SafetensorsReader.open(weightsPath);
  try {
    const { names, lmHead } = resolveTensorNames(reader, config);
    assertFitsBackend(config);
    const params = paramsFromWeights(config, (canonical) => reader.readFloat32(names.get(canonical)!), {
      lmHead: lmHead === null ? undefined : () => reader.readFloat32(lmHead),
      readInto: (canonical, out) => reader.readFloat32Into(names.get(canonical)!, out),
    });
    const model = new GPT2Model(config, params, options);
    // After the second thread is up, so that warming packs the weights both threads multiply by.
    await model.threadsReady;
    warmUp(model);
    return model;
  } finally {
    reader.close();
  }
}
