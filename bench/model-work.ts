/**
 * The arithmetic and the memory traffic a GPT-2 forward pass needs, counted the way the engine does the work,
 * so that the benchmark can set its times beside what the machine can do (machine-ceiling.ts).
 */
import type { GPT2Config } from '../worker/model/types.js';
import { Q8_GROUP } from '../worker/model/kernels/q8/q8.js';

/** Weights in one block's four matrices (c_attn, attention c_proj, c_fc, MLP c_proj). */
function blockMatrixWeights({ nEmbd: c, nInner: h }: GPT2Config): number {
  return c * 3 * c + c * c + c * h + h * c;
}

/**
 * Floating-point operations (a multiply–add is two) of one sequence's prefill of `tokens` tokens, returning the
 * last position's logits: every block's products for every position, except the last block's attention
 * projection and MLP, which carry the last position alone (decode.ts, `narrowLast`); causal attention (each
 * position against itself and those before it, for q·Kᵀ and for the weights times V); the output layer once.
 */
export function prefillFlops(config: GPT2Config, tokens: number): number {
  const { nEmbd: c, nInner: h, nLayer: layers, vocabSize } = config;
  const everyPosition = 2 * tokens * ((layers - 1) * blockMatrixWeights(config) + 3 * c * c);
  const lastPosition = 2 * (c * c + 2 * c * h) + 2 * c * vocabSize;
  const attention = layers * 2 * 2 * c * ((tokens * (tokens + 1)) / 2);
  return everyPosition + lastPosition + attention;
}

/**
 * Bytes a decode step reads from memory for one sequence at `position` cached positions: every matrix once
 * (float32, or int8 with a float32 scale per group of 32 in the fast precision; the output layer is the
 * embedding, tied) and the keys and values of every layer. `screened`: the exact precision's output layer read
 * in int8 (worker/model/output-screen.ts; its few exact rows left out). Layer norms, biases and the one embedding
 * row are left out (under 0.1 %).
 */
export function decodeBytesPerToken(config: GPT2Config, precision: 'exact' | 'fast', position: number, screened = false): number {
  const int8 = 1 + 4 / Q8_GROUP;
  const blocks = config.nLayer * blockMatrixWeights(config) * (precision === 'fast' ? int8 : 4);
  const output = config.vocabSize * config.nEmbd * (precision === 'fast' || screened ? int8 : 4);
  const keysValues = config.nLayer * 2 * position * config.nEmbd * 4;
  return blocks + output + keysValues;
}
