/**
 * AdamW (Loshchilov & Hutter) with decoupled weight decay, as PyTorch's `torch.optim.AdamW` computes it,
 * plus global-norm gradient clipping and the warm-up + cosine learning-rate schedule.
 *
 * Written here rather than taken from tfjs-core's `tf.train.adam`: that one has no decoupled decay, no
 * per-parameter decay exclusion, and no way to read and restore its moments exactly for a checkpoint.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

/** Moments and step count, as plain arrays a checkpoint can hold. */
export interface AdamWState {
  step: number;
  m: Map<string, tf.Tensor>;
  v: Map<string, tf.Tensor>;
}

/** Decay matrices (linear weights, embeddings, adapters); not biases or LayerNorm gains (1-D). */
export function decays(shape: readonly number[]): boolean {
  return shape.length >= 2;
}

export class AdamW {
  private t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly params: ReadonlyMap<string, tf.Variable>,
    private readonly config: AdamWConfig,
  ) {
    for (const [name, p] of params) {
      this.m.set(name, zeroVariable(p));
      this.v.set(name, zeroVariable(p));
    }
  }

  /** Optimizer steps taken so far. */
  get step(): number {
    return this.t;
  }

  /** One update of every parameter that has a gradient, at learning rate `lr`. */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    this.t += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.config;
    const stepSize = lr / (1 - beta1 ** this.t);
    const sqrtBias2 = Math.sqrt(1 - beta2 ** this.t);
    for (const [name, g] of grads) {
      const p = this.params.get(name);
      const m = this.m.get(name);
      const v = this.v.get(name);
      if (p === undefined || m === undefined || v === undefined) throw new Error(`AdamW: "${name}" is not a trained parameter`);
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const decayed = weightDecay > 0 && decays(p.shape) ? tf.mul(p, 1 - lr * weightDecay) : p;
        const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBias2), epsilon);
        m.assign(m1);
        v.assign(v1);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m1, denom), stepSize)));
      });
    }
  }

  /** The moments (views of the live variables: read them before the next step) and the step count. */
  state(): AdamWState {
    return { step: this.t, m: new Map(this.m), v: new Map(this.v) };
  }

  /** Continues from saved moments; missing or misshapen ones are an error, not a silent restart. */
  load(step: number, m: ReadonlyMap<string, tf.Tensor>, v: ReadonlyMap<string, tf.Tensor>): void {
    for (const [name, own] of this.m) {
      for (const [kind, source, target] of [['m', m, own], ['v', v, this.v.get(name)!]] as const) {
        const saved = source.get(name);
        if (saved === undefined) throw new Error(`the checkpoint has no optimizer moment ${kind} for "${name}"`);
        if (!tf.util.arraysEqual(saved.shape, target.shape)) {
          throw new Error(`the checkpoint's optimizer moment ${kind} for "${name}" has shape [${saved.shape}], expected [${target.shape}]`);
        }
        target.assign(saved);
      }
    }
    this.t = step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** A variable of zeros shaped like `p`; the tidy frees the initial tensor, the variable keeps the data. */
function zeroVariable(p: tf.Tensor): tf.Variable {
  return tf.tidy(() => tf.variable(tf.zerosLike(p), false));
}

/**
 * Scales the gradients so that their global L2 norm is at most `maxNorm` (as `clip_grad_norm_`).
 * Returns new tensors and the norm before clipping; the inputs are left alone.
 */
export function clipByGlobalNorm(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number,
): { grads: Map<string, tf.Tensor>; norm: tf.Scalar } {
  const norm = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
  const factor = tf.tidy(() => tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6))));
  const clipped = new Map<string, tf.Tensor>();
  for (const [name, g] of grads) clipped.set(name, tf.mul(g, factor));
  factor.dispose();
  return { grads: clipped, norm };
}

export interface ScheduleConfig {
  peak: number;
  /** The floor cosine decay ends at. */
  min: number;
  warmupSteps: number;
  totalSteps: number;
}

/**
 * Learning rate of optimizer step `step` (0-based): a linear ramp to `peak` over the warm-up (the first
 * step already moves), then half a cosine down to `min` at the last step.
 */
export function learningRateAt(step: number, s: ScheduleConfig): number {
  if (step < s.warmupSteps) return (s.peak * (step + 1)) / s.warmupSteps;
  const decaySteps = s.totalSteps - s.warmupSteps;
  if (decaySteps <= 1) return s.peak;
  const progress = Math.min(1, (step - s.warmupSteps) / (decaySteps - 1));
  return s.min + 0.5 * (s.peak - s.min) * (1 + Math.cos(Math.PI * progress));
}
