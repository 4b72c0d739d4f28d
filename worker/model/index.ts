/** The model part of the engine: GPT-2 in TensorFlow.js, its files, and its KV cache. */
export type { ForwardOptions, GPT2Config, KvCache, LanguageModel } from './types.js';
export { ModelFormatError, type ModelFormatErrorCode } from './errors.js';
export { GPT2_DEFAULTS, completeGPT2Config, gpt2ConfigToJson, parseGPT2Config, type ParsedGPT2Config } from './config.js';
export {
  SafetensorsReader,
  writeSafetensors,
  float16ToFloat32,
  float32ToFloat16,
  bfloat16ToFloat32,
  type SafetensorsTensorInfo,
  type TensorToWrite,
} from './safetensors.js';
export { GPT2Model, gpt2Forward, paramTensors, type GPT2Params, type GPT2ForwardResult, type LayerKv } from './gpt2.js';
export type { GPT2ModelOptions } from './gpt2.js';
export { PRECISIONS, PRECISION_ENV, wantedPrecision, type Precision } from './parallel/decode-products.js';
export type { BlockParams, LayerNormParams, LinearParams, LoraParams } from './gpt2.js';
export { GPT2KvCache } from './kv-cache.js';
export { gpt2TensorShapes, paramsFromWeights } from './weights.js';
export { loadModel, readGPT2Config } from './load.js';
export { createRandomModel, randomWeights } from './random.js';
