/** Hugging Face GPT-2 tensor names ⇄ the params object the forward pass takes. */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Params, LayerNormParams, LinearParams } from './gpt2.js';
import { currentBackendMemory } from './kernels/backend-memory.js';
import type { GPT2Config } from './types.js';

/** Every tensor of a GPT2LMHeadModel checkpoint (names without the `transformer.` prefix) and its shape. */
export function gpt2TensorShapes(config: GPT2Config): Map<string, number[]> {
  const { vocabSize: V, nPositions: P, nEmbd: C, nInner: I } = config;
  const shapes = new Map<string, number[]>([
    ['wte.weight', [V, C]],
    ['wpe.weight', [P, C]],
  ]);
  for (let i = 0; i < config.nLayer; i++) {
    const h = `h.${i}`;
    shapes.set(`${h}.ln_1.weight`, [C]).set(`${h}.ln_1.bias`, [C]);
    shapes.set(`${h}.attn.c_attn.weight`, [C, 3 * C]).set(`${h}.attn.c_attn.bias`, [3 * C]);
    shapes.set(`${h}.attn.c_proj.weight`, [C, C]).set(`${h}.attn.c_proj.bias`, [C]);
    shapes.set(`${h}.ln_2.weight`, [C]).set(`${h}.ln_2.bias`, [C]);
    shapes.set(`${h}.mlp.c_fc.weight`, [C, I]).set(`${h}.mlp.c_fc.bias`, [I]);
    shapes.set(`${h}.mlp.c_proj.weight`, [I, C]).set(`${h}.mlp.c_proj.bias`, [C]);
  }
  shapes.set('ln_f.weight', [C]).set('ln_f.bias', [C]);
  return shapes;
}

/** Optional ways to read a checkpoint's values. */
export interface WeightReaders {
  /** An untied `lm_head.weight` [vocab, n_embd], kept transposed as `lmHead` [n_embd, vocab]. */
  lmHead?: () => Float32Array;
  /**
   * Reads a tensor's values straight into `out`, a buffer of the backend's: a model loads with no JavaScript
   * array per tensor, which the allocator would keep as resident memory after they are collected (measured
   * ~60 MiB for GPT-2 small).
   */
  readInto?: (name: string, out: Float32Array) => void;
}

/**
 * Builds the params from named float32 values, one tensor at a time (so at most one tensor's values are in
 * JS memory at once; none with `readInto`). Without an untied output layer it is tied to `wte` and no copy is
 * made here (GPT2Model makes one only on backends that multiply by a transposed operand slowly).
 */
export function paramsFromWeights(config: GPT2Config, read: (name: string) => Float32Array, readers: WeightReaders = {}): GPT2Params {
  // In a tidy scope so that a failed read frees the tensors already made.
  return tf.tidy(() => buildParams(config, read, readers) as unknown as tf.TensorContainer) as unknown as GPT2Params;
}

function buildParams(config: GPT2Config, read: (name: string) => Float32Array, readers: WeightReaders): GPT2Params {
  const shapes = gpt2TensorShapes(config);
  const memory = readers.readInto ? currentBackendMemory() : null;
  const tensor = <T extends tf.Tensor>(name: string): T => {
    const shape = shapes.get(name)!;
    if (!memory || !readers.readInto) return tf.tensor(read(name), shape) as T;
    const info = memory.alloc(shape);
    try {
      readers.readInto(name, memory.view(info));
    } catch (error) {
      memory.free(info);
      throw error;
    }
    return memory.toTensor(info) as T;
  };
  const layerNorm = (prefix: string): LayerNormParams => ({ weight: tensor(`${prefix}.weight`), bias: tensor(`${prefix}.bias`) });
  const linear = (prefix: string): LinearParams => ({ weight: tensor(`${prefix}.weight`), bias: tensor(`${prefix}.bias`) });

  const params: GPT2Params = {
    wte: tensor<tf.Tensor2D>('wte.weight'),
    wpe: tensor('wpe.weight'),
    blocks: Array.from({ length: config.nLayer }, (_, i) => ({
      ln1: layerNorm(`h.${i}.ln_1`),
      attn: { cAttn: linear(`h.${i}.attn.c_attn`), cProj: linear(`h.${i}.attn.c_proj`) },
      ln2: layerNorm(`h.${i}.ln_2`),
      mlp: { cFc: linear(`h.${i}.mlp.c_fc`), cProj: linear(`h.${i}.mlp.c_proj`) },
    })),
    lnF: layerNorm('ln_f'),
  };
  if (readers.lmHead) params.lmHead = tf.transpose(tf.tensor2d(readers.lmHead(), [config.vocabSize, config.nEmbd]));
  return params;
}
