/** Held-out loss: mean next-token cross-entropy over the held-out blocks, without dropout. */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from '../model/types.js';
import { makeBatch, type Block, type Dataset } from './data.js';
import { batchLoss, type ParamMap } from './forward.js';
import type { LoraSet } from './lora.js';

export interface EvaluateOptions {
  lora?: LoraSet;
  /** Blocks per forward pass. */
  batchSize?: number;
  /** Awaited between forward passes; returning false stops the evaluation (it then returns 'cancelled'). */
  between?: () => Promise<boolean>;
}

/** Token-weighted mean loss over `dataset.heldOutBlocks`; null when there are none. */
export async function evaluateLoss(
  params: ParamMap,
  config: GPT2Config,
  dataset: Pick<Dataset, 'heldOut' | 'heldOutBlocks'>,
  options: EvaluateOptions = {},
): Promise<number | null | 'cancelled'> {
  const batches = groupByLength(dataset.heldOutBlocks, options.batchSize ?? 4);
  if (batches.length === 0) return null;
  let total = 0;
  let tokens = 0;
  for (const blocks of batches) {
    if (options.between && !(await options.between())) return 'cancelled';
    const batch = makeBatch(dataset.heldOut, blocks);
    const loss = tf.tidy(() => batchLoss(params, batch, { config, lora: options.lora }));
    total += (await loss.data())[0] * batch.targets.length;
    tokens += batch.targets.length;
    loss.dispose();
  }
  return total / tokens;
}

/** Consecutive blocks of equal length, at most `size` at a time (only the last held-out block is shorter). */
function groupByLength(blocks: readonly Block[], size: number): Block[][] {
  const groups: Block[][] = [];
  for (const block of blocks) {
    const last = groups[groups.length - 1];
    if (last && last.length < size && last[0].length === block.length) last.push(block);
    else groups.push([block]);
  }
  return groups;
}
