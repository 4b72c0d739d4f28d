/**
 * LoRA (Hu et al., 2021): beside a frozen linear `x W + b`, a trainable low-rank path `(x A) B · alpha/rank`.
 *
 * A starts uniform in ±1/√in (PEFT's Kaiming-uniform default) and B at zero, so before the first step the
 * adapted model is exactly the base model. Merging adds `A B · alpha/rank` into `W` (Conv1D `[in, out]`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from '../model/types.js';
import type { ParamMap } from './forward.js';

/** Linears an adapter can sit beside, by their name inside a block. */
export const LORA_MODULES = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

export interface LoraConfig {
  rank: number;
  alpha: number;
  /** Dropout on each adapter's input during training. */
  dropout: number;
  targets: LoraModule[];
}

export const DEFAULT_LORA: LoraConfig = { rank: 8, alpha: 16, dropout: 0.05, targets: ['attn.c_attn'] };

export interface LoraAdapter {
  /** `[in, rank]` */
  a: tf.Tensor;
  /** `[rank, out]` */
  b: tf.Tensor;
  scale: number;
}

/** Adapters by the linear they adapt (`h.0.attn.c_attn`). */
export type LoraSet = ReadonlyMap<string, LoraAdapter>;

/**
 * Target names as PEFT users write them: `c_attn`, `c_fc`, and `c_proj` meaning both projections
 * (PEFT matches by suffix), or the exact `attn.c_proj` / `mlp.c_proj`.
 */
export function parseLoraTargets(names: readonly string[]): LoraModule[] {
  const out = new Set<LoraModule>();
  for (const raw of names) {
    const name = raw.trim();
    const matches = LORA_MODULES.filter((m) => m === name || m.endsWith(`.${name}`));
    if (matches.length === 0) {
      throw new Error(`unknown LoRA target "${raw}": use ${LORA_MODULES.join(', ')} (or c_attn, c_proj, c_fc)`);
    }
    matches.forEach((m) => out.add(m));
  }
  return LORA_MODULES.filter((m) => out.has(m));
}

export function checkLoraConfig(lora: LoraConfig): void {
  if (!Number.isInteger(lora.rank) || lora.rank < 1) throw new Error(`LoRA rank must be a positive integer, got ${lora.rank}`);
  if (!(lora.alpha > 0)) throw new Error(`LoRA alpha must be positive, got ${lora.alpha}`);
  if (!(lora.dropout >= 0 && lora.dropout < 1)) throw new Error(`LoRA dropout must be in [0, 1), got ${lora.dropout}`);
  if (lora.targets.length === 0) throw new Error('LoRA needs at least one target module');
  const unknown = lora.targets.find((t) => !(LORA_MODULES as readonly string[]).includes(t));
  if (unknown !== undefined) throw new Error(`unknown LoRA target "${unknown}": use ${LORA_MODULES.join(', ')} (parseLoraTargets reads short names)`);
}

/** Trainable tensor names of the adapters: `h.0.attn.c_attn.lora_a` and `.lora_b`, with their shapes. */
export function loraShapes(config: GPT2Config, lora: LoraConfig): Map<string, number[]> {
  const dims: Record<LoraModule, [number, number]> = {
    'attn.c_attn': [config.nEmbd, 3 * config.nEmbd],
    'attn.c_proj': [config.nEmbd, config.nEmbd],
    'mlp.c_fc': [config.nEmbd, config.nInner],
    'mlp.c_proj': [config.nInner, config.nEmbd],
  };
  const shapes = new Map<string, number[]>();
  for (let i = 0; i < config.nLayer; i++) {
    for (const target of lora.targets) {
      const [fanIn, fanOut] = dims[target];
      shapes.set(`h.${i}.${target}.lora_a`, [fanIn, lora.rank]);
      shapes.set(`h.${i}.${target}.lora_b`, [lora.rank, fanOut]);
    }
  }
  return shapes;
}

/** Fresh adapter tensors: A uniform in ±1/√in from `seed`, B zero. */
export function initLoraTensors(config: GPT2Config, lora: LoraConfig, seed: number): Map<string, tf.Tensor> {
  const tensors = new Map<string, tf.Tensor>();
  let n = 0;
  for (const [name, shape] of loraShapes(config, lora)) {
    if (name.endsWith('.lora_a')) {
      const bound = 1 / Math.sqrt(shape[0]);
      tensors.set(name, tf.randomUniform(shape, -bound, bound, 'float32', seed + n++));
    } else {
      tensors.set(name, tf.zeros(shape));
    }
  }
  return tensors;
}

/** The adapters as the forward wants them, viewing (not copying) the trainable tensors. */
export function loraSet(tensors: ReadonlyMap<string, tf.Tensor>, lora: LoraConfig): LoraSet {
  const set = new Map<string, LoraAdapter>();
  const scale = lora.alpha / lora.rank;
  for (const [name, a] of tensors) {
    if (!name.endsWith('.lora_a')) continue;
    const base = name.slice(0, -'.lora_a'.length);
    const b = tensors.get(`${base}.lora_b`);
    if (b === undefined) throw new Error(`adapter ${base} has an A matrix but no B matrix`);
    set.set(base, { a, b, scale });
  }
  return set;
}

/**
 * Base parameters with every adapter folded in: new tensors for the adapted weights (the caller disposes
 * them: see `disposeMerged`), the base's own tensors for everything else.
 */
export function mergeLora(base: ParamMap, adapters: LoraSet): Record<string, tf.Tensor> {
  const merged: Record<string, tf.Tensor> = { ...base };
  for (const [module, { a, b, scale }] of adapters) {
    const name = `${module}.weight`;
    const weight = base[name];
    if (weight === undefined) throw new Error(`cannot merge adapter ${module}: the model has no ${name}`);
    merged[name] = tf.tidy(() => tf.add(weight, tf.mul(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D), scale)));
  }
  return merged;
}

/** Frees the tensors `mergeLora` made, leaving the base's. */
export function disposeMerged(merged: Record<string, tf.Tensor>, base: ParamMap): void {
  for (const [name, t] of Object.entries(merged)) if (base[name] !== t) t.dispose();
}
