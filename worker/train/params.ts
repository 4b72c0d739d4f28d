/**
 * Between worker/model's structured `GPT2Params` (what `loadModel` and `GPT2Model` hold) and the flat
 * Hugging Face–named map that training, checkpoints and export walk.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GPT2Model, type GPT2ModelOptions, type GPT2Params, type LayerNormParams, type LinearParams } from '../model/gpt2.js';
import type { GPT2Config } from '../model/types.js';
import type { ParamMap } from './forward.js';

/** A view (no copies) of a model's weights under their Hugging Face names. */
export function paramMapOf(params: GPT2Params): Record<string, tf.Tensor> {
  const map: Record<string, tf.Tensor> = { 'wte.weight': params.wte, 'wpe.weight': params.wpe };
  const ln = (name: string, p: LayerNormParams) => {
    map[`${name}.weight`] = p.weight;
    map[`${name}.bias`] = p.bias;
  };
  const linear = (name: string, p: LinearParams) => {
    if (p.lora) throw new Error(`${name} carries a LoRA adapter: merge it before reading the weights`);
    map[`${name}.weight`] = p.weight;
    map[`${name}.bias`] = p.bias;
  };
  params.blocks.forEach((b, i) => {
    ln(`h.${i}.ln_1`, b.ln1);
    linear(`h.${i}.attn.c_attn`, b.attn.cAttn);
    linear(`h.${i}.attn.c_proj`, b.attn.cProj);
    ln(`h.${i}.ln_2`, b.ln2);
    linear(`h.${i}.mlp.c_fc`, b.mlp.cFc);
    linear(`h.${i}.mlp.c_proj`, b.mlp.cProj);
  });
  ln('ln_f', params.lnF);
  return map;
}

/**
 * An inference model (KV cache, generation) with copies of `params` — e.g. a fine-tuned model used in
 * place, without writing it out and loading it back. The output layer is tied to `wte`. `options` as for
 * GPT2Model (threads, precision: a style keeps the engine's).
 */
export function modelFromParams(config: GPT2Config, params: ParamMap, options: GPT2ModelOptions = {}): GPT2Model {
  const copies = tf.tidy(() => {
    const t = <T extends tf.Tensor>(name: string) => {
      const source = params[name];
      if (source === undefined) throw new Error(`the weights have no "${name}"`);
      return source.clone() as T;
    };
    const ln = (name: string): LayerNormParams => ({ weight: t(`${name}.weight`), bias: t(`${name}.bias`) });
    const linear = (name: string): LinearParams => ({ weight: t(`${name}.weight`), bias: t(`${name}.bias`) });
    const wte = t<tf.Tensor2D>('wte.weight');
    const built: GPT2Params = {
      wte,
      wpe: t('wpe.weight'),
      blocks: Array.from({ length: config.nLayer }, (_, i) => ({
        ln1: ln(`h.${i}.ln_1`),
        attn: { cAttn: linear(`h.${i}.attn.c_attn`), cProj: linear(`h.${i}.attn.c_proj`) },
        ln2: ln(`h.${i}.ln_2`),
        mlp: { cFc: linear(`h.${i}.mlp.c_fc`), cProj: linear(`h.${i}.mlp.c_proj`) },
      })),
      lnF: ln('ln_f'),
    };
    return built as unknown as tf.TensorContainer;
  }) as unknown as GPT2Params;
  return new GPT2Model(config, copies, options);
}
