/** What a training run produces: adapters (LoRA) or a full set of weights, and the model they make. */
import type * as tf from '@tensorflow/tfjs-core';
import type { ParamMap } from './forward.js';
import { disposeMerged, loraSet, mergeLora, type LoraConfig } from './lora.js';
import type { TrainingMethod } from './options.js';

export class TrainedWeights {
  constructor(
    readonly method: TrainingMethod,
    readonly lora: LoraConfig | null,
    /** Adapter tensors (`h.0.attn.c_attn.lora_a`, ...) for LoRA; every parameter for full training. */
    readonly tensors: ReadonlyMap<string, tf.Tensor>,
  ) {}

  /**
   * Runs `use` with the complete parameters of the trained model — the base with the adapters merged in
   * (LoRA), or the trained weights themselves — and frees whatever merging made once it settles.
   */
  async withModelParams<T>(base: ParamMap, use: (params: ParamMap) => T | Promise<T>): Promise<T> {
    if (this.lora === null) return use(Object.fromEntries(this.tensors));
    const merged = mergeLora(base, loraSet(this.tensors, this.lora));
    try {
      return await use(merged);
    } finally {
      disposeMerged(merged, base);
    }
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
  }
}
