/**
 * Importing a GPT-2 checkpoint the user already has: a Hugging Face folder (config.json + model.safetensors,
 * tokenizer files optional) or a single .safetensors file. Everything is checked from the config and the
 * safetensors header — names, shapes, dtypes, offsets — without reading the weights, so a multi-GB file is
 * validated in milliseconds and a wrong file is refused before anything is copied.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gpt2ConfigToJson, parseGPT2Config, type ParsedGPT2Config } from '../../worker/model/config.js';
import { ModelFormatError } from '../../worker/model/errors.js';
import { readGPT2Config } from '../../worker/model/load.js';
import { SafetensorsReader } from '../../worker/model/safetensors.js';
import { gpt2TensorShapes } from '../../worker/model/weights.js';
import { loadTokenizer } from '../../worker/tokenizer/index.js';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);
/** Causal-mask buffers older transformers versions saved; the loader ignores them. */
const IGNORED_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;
const TOKENIZER_FILES = ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];
/** Heads of the released GPT-2 sizes by width: a lone .safetensors file has no config to say. */
const RELEASED_HEADS: ReadonlyMap<number, number> = new Map([[768, 12], [1024, 16], [1280, 20], [1600, 25]]);
const RELEASED_NAMES: ReadonlyMap<string, string> = new Map([
  ['12x768', 'gpt2'],
  ['24x1024', 'gpt2-medium'],
  ['36x1280', 'gpt2-large'],
  ['48x1600', 'gpt2-xl'],
]);

/** A file the import writes into the model's folder: copied from `source`, or written from `contents`. */
export type ImportFile = { name: string; source: string; bytes: number } | { name: string; contents: string; bytes: number };

export interface ImportSummary {
  /** What was given: a folder or a single weights file. */
  kind: 'folder' | 'file';
  source: string;
  /** A folder name for the copy (the source's name, or the released model it matches). */
  suggestedName: string;
  config: ParsedGPT2Config;
  /** "gpt2", "gpt2-medium", … when the shape is a released one. */
  releasedAs: string | null;
  parameters: number;
  /** Weight dtypes found (one for every released checkpoint). */
  dtypes: string[];
  /** Bytes of all files to copy. */
  sizeBytes: number;
  /**
   * Bytes the loaded model holds on the wasm backend: float32 weights, the output layer's transposed copy,
   * and the packed copy XNNPACK keeps of every matrix (the estimate the loader's size check uses).
   */
  memoryBytes: number;
  /** Tokenizer files brought along; empty: GPT-2's own tokenizer is used. */
  tokenizerFiles: string[];
  files: ImportFile[];
}

/**
 * Validates `source` (a folder or a .safetensors file) as a GPT-2 checkpoint; throws ModelFormatError with
 * a message naming the file and the problem otherwise.
 */
export async function inspectImport(source: string): Promise<ImportSummary> {
  const info = await stat(source).catch(() => null);
  if (info === null) throw new ModelFormatError('missing_file', `${source}: no such file or folder`);
  return info.isDirectory() ? inspectFolder(path.resolve(source)) : inspectFile(path.resolve(source), info.size);
}

async function inspectFolder(dir: string): Promise<ImportSummary> {
  const weights = path.join(dir, 'model.safetensors');
  if (!existsSync(path.join(dir, 'config.json'))) {
    const hint = existsSync(weights) ? ' (to import the weights alone, give the .safetensors file itself)' : '';
    throw new ModelFormatError('missing_file', `${dir}: no config.json — not a Hugging Face model folder${hint}`);
  }
  const config = await readGPT2Config(dir);
  if (!existsSync(weights)) {
    const others = ['pytorch_model.bin', 'tf_model.h5', 'flax_model.msgpack', 'model.safetensors.index.json'].filter((f) => existsSync(path.join(dir, f)));
    const hint = others.length > 0 ? ` (it has ${others.join(', ')}; only a single model.safetensors is supported — convert it first)` : '';
    throw new ModelFormatError('missing_file', `${dir}: no model.safetensors${hint}`);
  }
  const { dtypes, parameters } = checkTensors(weights, config);
  const tokenizerFiles = TOKENIZER_FILES.filter((f) => existsSync(path.join(dir, f)));
  await checkTokenizer(dir, tokenizerFiles, config);
  const names = ['config.json', 'model.safetensors', ...tokenizerFiles];
  const files: ImportFile[] = await Promise.all(
    names.map(async (name) => ({ name, source: path.join(dir, name), bytes: (await stat(path.join(dir, name))).size })),
  );
  return summary('folder', dir, path.basename(dir), config, dtypes, parameters, files, tokenizerFiles.filter((f) => f !== 'generation_config.json'));
}

async function inspectFile(file: string, size: number): Promise<ImportSummary> {
  if (!file.endsWith('.safetensors')) {
    const hint = /\.(bin|pt|pth|ckpt|h5|gguf|ggml)$/i.test(file) ? ' (convert it to safetensors, e.g. with transformers\' save_pretrained)' : '';
    throw new ModelFormatError('missing_file', `${file}: not a .safetensors file${hint}`);
  }
  // A config.json beside the file is the file's own; otherwise the shape is read from the tensors.
  const besideConfig = path.join(path.dirname(file), 'config.json');
  const config = existsSync(besideConfig) ? await readGPT2Config(path.dirname(file)) : inferConfig(file);
  const { dtypes, parameters } = checkTensors(file, config);
  const json = JSON.stringify(gpt2ConfigToJson(config), null, 2) + '\n';
  const files: ImportFile[] = [
    { name: 'config.json', contents: json, bytes: Buffer.byteLength(json) },
    { name: 'model.safetensors', source: file, bytes: size },
  ];
  return summary('file', file, path.basename(file, '.safetensors'), config, dtypes, parameters, files, []);
}

function summary(
  kind: 'folder' | 'file',
  source: string,
  baseName: string,
  config: ParsedGPT2Config,
  dtypes: string[],
  parameters: number,
  files: ImportFile[],
  tokenizerFiles: string[],
): ImportSummary {
  const releasedAs = config.vocabSize === 50257 && config.nPositions === 1024 ? RELEASED_NAMES.get(`${config.nLayer}x${config.nEmbd}`) ?? null : null;
  const generic = ['model', 'gpt2', 'checkpoint', ''].includes(baseName.toLowerCase());
  return {
    kind,
    source,
    suggestedName: generic && releasedAs ? releasedAs : sanitizeName(baseName) || releasedAs || 'imported-gpt2',
    config,
    releasedAs,
    parameters,
    dtypes,
    sizeBytes: files.reduce((n, f) => n + f.bytes, 0),
    memoryBytes: memoryEstimate(config, parameters),
    tokenizerFiles,
    files,
  };
}

/** A GPT-2 config from the tensor shapes of a lone weights file; the width must be a released one (for n_head). */
function inferConfig(file: string): ParsedGPT2Config {
  const reader = SafetensorsReader.open(file);
  try {
    const shape = (canonical: string): number[] | null => {
      const info = reader.tensors.get(canonical) ?? reader.tensors.get(`transformer.${canonical}`);
      return info ? info.shape : null;
    };
    const wte = shape('wte.weight');
    const wpe = shape('wpe.weight');
    if (!wte || !wpe || wte.length !== 2 || wpe.length !== 2) {
      const names = [...reader.tensors.keys()].slice(0, 3).join(', ');
      throw new ModelFormatError('not_gpt2', `${file}: not a GPT-2 checkpoint (no wte.weight/wpe.weight embeddings; it has ${names || 'no tensors'}…)`);
    }
    let nLayer = 0;
    for (const name of reader.tensors.keys()) {
      const m = /^(?:transformer\.)?h\.(\d+)\./.exec(name);
      if (m) nLayer = Math.max(nLayer, Number(m[1]) + 1);
    }
    const nEmbd = wte[1];
    const nHead = RELEASED_HEADS.get(nEmbd);
    if (nHead === undefined) {
      throw new ModelFormatError(
        'invalid_config',
        `${file}: width ${nEmbd} is not one of the released GPT-2 sizes, so its number of heads is unknown — import the folder with its config.json`,
      );
    }
    const fc = shape('h.0.mlp.c_fc.weight');
    return parseGPT2Config({
      model_type: 'gpt2',
      vocab_size: wte[0],
      n_positions: wpe[0],
      n_embd: nEmbd,
      n_layer: Math.max(1, nLayer),
      n_head: nHead,
      n_inner: fc ? fc[1] : null,
    });
  } finally {
    reader.close();
  }
}

/**
 * The loader's checks on the header alone: every tensor GPT-2 needs is there with the shape the config
 * implies and a float dtype, and no layer beyond n_layer. Returns the dtypes and the parameter count.
 */
function checkTensors(file: string, config: ParsedGPT2Config): { dtypes: string[]; parameters: number } {
  const reader = SafetensorsReader.open(file); // validates the header, offsets and file size
  try {
    const stored = new Map<string, string>();
    for (const name of reader.tensors.keys()) {
      const canonical = name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
      const layer = /^h\.(\d+)\./.exec(canonical);
      if (layer && Number(layer[1]) >= config.nLayer) {
        throw new ModelFormatError('config_mismatch', `${file}: has tensor '${name}' of layer ${layer[1]}, but the config says n_layer = ${config.nLayer}`, name);
      }
      if (!IGNORED_BUFFER.test(canonical)) stored.set(canonical, name);
    }
    if (!stored.has('wte.weight') && !stored.has('h.0.attn.c_attn.weight')) {
      const names = [...reader.tensors.keys()].slice(0, 3).join(', ');
      throw new ModelFormatError('not_gpt2', `${file}: not a GPT-2 checkpoint (its tensors are ${names || 'none'}…)`);
    }
    const expected = gpt2TensorShapes(config);
    if (!config.tieWordEmbeddings) expected.set('lm_head.weight', [config.vocabSize, config.nEmbd]);
    const dtypes = new Set<string>();
    let parameters = 0;
    for (const [canonical, shape] of expected) {
      const name = stored.get(canonical);
      if (name === undefined) throw new ModelFormatError('missing_tensor', `${file}: tensor '${canonical}' is missing`, canonical);
      const info = reader.info(name);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new ModelFormatError(
          'shape_mismatch',
          `${file}: tensor '${name}' has shape [${info.shape.join(', ')}], but the config needs [${shape.join(', ')}]`,
          name,
        );
      }
      if (!FLOAT_DTYPES.has(info.dtype)) {
        throw new ModelFormatError('unsupported_dtype', `${file}: tensor '${name}' has dtype ${info.dtype}; weights must be F32, F16 or BF16`, name);
      }
      dtypes.add(info.dtype);
      parameters += shape.reduce((a, b) => a * b, 1);
    }
    return { dtypes: [...dtypes].sort(), parameters };
  } finally {
    reader.close();
  }
}

/** The tokenizer files must load, and without any the vocabulary must be GPT-2's (its tokenizer is then used). */
async function checkTokenizer(dir: string, files: string[], config: ParsedGPT2Config): Promise<void> {
  const hasVocab = files.includes('tokenizer.json') || (files.includes('vocab.json') && files.includes('merges.txt'));
  if (!hasVocab) {
    if (config.vocabSize !== 50257) {
      throw new ModelFormatError(
        'invalid_config',
        `${dir}: no tokenizer files (vocab.json + merges.txt or tokenizer.json), and its vocabulary of ${config.vocabSize} is not GPT-2's 50257`,
      );
    }
    return;
  }
  let tokenizer;
  try {
    tokenizer = await loadTokenizer(dir);
  } catch (error) {
    throw new ModelFormatError('invalid_config', `${dir}: its tokenizer cannot be used: ${(error as Error).message}`);
  }
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new ModelFormatError('config_mismatch', `${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${config.vocabSize}`);
  }
}

function memoryEstimate(config: ParsedGPT2Config, parameters: number): number {
  let matrices = config.nEmbd * config.vocabSize;
  for (const [name, shape] of gpt2TensorShapes(config)) {
    if (/\.c_(attn|proj|fc)\.weight$/.test(name)) matrices += shape[0] * shape[1];
  }
  return 4 * (parameters + config.nEmbd * config.vocabSize + matrices);
}

function sanitizeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '').slice(0, 80);
}

export interface CopyOptions {
  /** Called after each chunk with bytes copied so far and the total. */
  onProgress?: (copied: number, total: number) => void;
  /** Replace an existing folder of that name. */
  overwrite?: boolean;
}

/**
 * Copies the validated files into `target` (a new folder), through `target.partial` renamed at the end, so
 * an interrupted import leaves no half model behind.
 */
export async function copyImport(summary: ImportSummary, target: string, options: CopyOptions = {}): Promise<void> {
  if (existsSync(target) && !options.overwrite) throw new Error(`${target} already exists; choose another name or replace it`);
  const partial = `${target}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  let copied = 0;
  for (const file of summary.files) {
    const to = path.join(partial, file.name);
    if ('contents' in file) {
      await writeFile(to, file.contents);
      copied += file.bytes;
    } else {
      // Streamed rather than copyFile so that a multi-GB weights file reports progress as it goes.
      const done = copied;
      await pipeline(createReadStream(file.source, { highWaterMark: 4 << 20 }), async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          copied += chunk.length;
          options.onProgress?.(copied, summary.sizeBytes);
          yield chunk;
        }
      }, createWriteStream(to));
      copied = done + file.bytes;
    }
    options.onProgress?.(copied, summary.sizeBytes);
  }
  const source = JSON.stringify({ importedFrom: summary.source, importedAt: new Date().toISOString() }, null, 2) + '\n';
  await writeFile(path.join(partial, 'inkling-source.json'), source);
  await rm(target, { recursive: true, force: true });
  await rename(partial, target);
}

/** Reads back what copyImport wrote about the origin of a model folder (null when it was not imported). */
export async function importedFrom(dir: string): Promise<string | null> {
  try {
    return (JSON.parse(await readFile(path.join(dir, 'inkling-source.json'), 'utf8')) as { importedFrom: string }).importedFrom;
  } catch {
    return null;
  }
}
