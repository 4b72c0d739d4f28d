/** Hugging Face GPT-2 `config.json` ⇄ GPT2Config, with the defaults of transformers' `GPT2Config`. */
import { ModelFormatError } from './errors.js';
import type { GPT2Config } from './types.js';

/** A parsed config plus what only the loader needs. */
export interface ParsedGPT2Config extends GPT2Config {
  /** Output layer = transposed token embedding (`tie_word_embeddings`, true for every released GPT-2). */
  tieWordEmbeddings: boolean;
}

/** transformers' GPT2Config defaults: the shape of GPT-2 small. */
export const GPT2_DEFAULTS: Readonly<ParsedGPT2Config> = {
  vocabSize: 50257,
  nPositions: 1024,
  nEmbd: 768,
  nLayer: 12,
  nHead: 12,
  nInner: 4 * 768,
  layerNormEpsilon: 1e-5,
  activation: 'gelu_new',
  scaleAttnWeights: true,
  scaleAttnByInverseLayerIdx: false,
  bosTokenId: 50256,
  eosTokenId: 50256,
  tieWordEmbeddings: true,
};

/** transformers' activation names → ours. `gelu_fast` is the same tanh formula as `gelu_new`, `gelu_python` is erf. */
const ACTIVATIONS: Readonly<Record<string, GPT2Config['activation']>> = {
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_pytorch_tanh',
  gelu_fast: 'gelu_new',
  gelu: 'gelu',
  gelu_python: 'gelu',
  relu: 'relu',
};

function invalid(message: string): ModelFormatError {
  return new ModelFormatError('invalid_config', `config.json: ${message}`);
}

/** Reads `field` or the alias transformers maps onto it (`hidden_size` → `n_embd`, …). */
function pick(raw: Record<string, unknown>, field: string, alias?: string): unknown {
  if (raw[field] !== undefined) return raw[field];
  return alias === undefined ? undefined : raw[alias];
}

function positiveInt(raw: Record<string, unknown>, field: string, fallback: number, alias?: string): number {
  const value = pick(raw, field, alias);
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(`${field} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function bool(raw: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const value = raw[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw invalid(`${field} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function tokenId(raw: Record<string, unknown>, field: string, fallback: number | null): number | null {
  let value = raw[field];
  if (value === undefined) return fallback;
  if (Array.isArray(value)) value = value[0] ?? null; // newer configs may list several; the first is the main one
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`${field} must be a token id or null, got ${JSON.stringify(raw[field])}`);
  }
  return value;
}

/** Validates a parsed `config.json` object; throws ModelFormatError ('not_gpt2' or 'invalid_config') naming the field. */
export function parseGPT2Config(raw: unknown): ParsedGPT2Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('not a JSON object');
  const json = raw as Record<string, unknown>;

  const modelType = json.model_type;
  const architectures = Array.isArray(json.architectures) ? json.architectures.map(String) : [];
  if (modelType !== undefined && modelType !== 'gpt2') {
    throw new ModelFormatError(
      'not_gpt2',
      `config.json describes a '${String(modelType)}' model; only GPT-2 (model_type "gpt2") is supported`,
    );
  }
  if (modelType === undefined && architectures.length > 0 && !architectures.some((a) => a.startsWith('GPT2'))) {
    throw new ModelFormatError(
      'not_gpt2',
      `config.json describes a ${architectures.join('/')} model; only GPT-2 is supported`,
    );
  }
  if (json.add_cross_attention === true) throw invalid('add_cross_attention (encoder-decoder GPT-2) is not supported');

  const nEmbd = positiveInt(json, 'n_embd', GPT2_DEFAULTS.nEmbd, 'hidden_size');
  const nHead = positiveInt(json, 'n_head', GPT2_DEFAULTS.nHead, 'num_attention_heads');
  if (nEmbd % nHead !== 0) throw invalid(`n_embd (${nEmbd}) is not divisible by n_head (${nHead})`);

  const activationName = json.activation_function ?? 'gelu_new';
  const activation = typeof activationName === 'string' ? ACTIVATIONS[activationName] : undefined;
  if (!activation) {
    throw invalid(
      `activation_function ${JSON.stringify(activationName)} is not supported (use one of ${Object.keys(ACTIVATIONS).join(', ')})`,
    );
  }

  const epsilon = json.layer_norm_epsilon ?? GPT2_DEFAULTS.layerNormEpsilon;
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon <= 0) {
    throw invalid(`layer_norm_epsilon must be a positive number, got ${JSON.stringify(epsilon)}`);
  }

  return {
    vocabSize: positiveInt(json, 'vocab_size', GPT2_DEFAULTS.vocabSize),
    nPositions: positiveInt(json, 'n_positions', GPT2_DEFAULTS.nPositions, 'max_position_embeddings'),
    nEmbd,
    nLayer: positiveInt(json, 'n_layer', GPT2_DEFAULTS.nLayer, 'num_hidden_layers'),
    nHead,
    nInner: positiveInt(json, 'n_inner', 4 * nEmbd),
    layerNormEpsilon: epsilon,
    activation,
    scaleAttnWeights: bool(json, 'scale_attn_weights', true),
    scaleAttnByInverseLayerIdx: bool(json, 'scale_attn_by_inverse_layer_idx', false),
    bosTokenId: tokenId(json, 'bos_token_id', GPT2_DEFAULTS.bosTokenId),
    eosTokenId: tokenId(json, 'eos_token_id', GPT2_DEFAULTS.eosTokenId),
    tieWordEmbeddings: bool(json, 'tie_word_embeddings', true),
  };
}

/** Fills the fields a caller left out with transformers' defaults (`nInner` follows `nEmbd`) and validates. */
export function completeGPT2Config(partial: Partial<GPT2Config> & { tieWordEmbeddings?: boolean }): ParsedGPT2Config {
  return parseGPT2Config(gpt2ConfigToJson({ ...GPT2_DEFAULTS, nInner: 4 * (partial.nEmbd ?? GPT2_DEFAULTS.nEmbd), ...partial }));
}

/** The `config.json` transformers writes for this config (for exported checkpoints and test folders). */
export function gpt2ConfigToJson(config: GPT2Config & { tieWordEmbeddings?: boolean }): Record<string, unknown> {
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: config.vocabSize,
    n_positions: config.nPositions,
    n_ctx: config.nPositions,
    n_embd: config.nEmbd,
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_inner: config.nInner === 4 * config.nEmbd ? null : config.nInner,
    activation_function: config.activation,
    layer_norm_epsilon: config.layerNormEpsilon,
    scale_attn_weights: config.scaleAttnWeights,
    scale_attn_by_inverse_layer_idx: config.scaleAttnByInverseLayerIdx,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: config.tieWordEmbeddings ?? true,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenId,
    torch_dtype: 'float32',
  };
}
