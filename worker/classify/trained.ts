/**
 * A trained text classifier, as Hugging Face's GPT2ForSequenceClassification: GPT-2's final hidden state at
 * each text's last real token, times a linear layer `score` (n_labels × n_embd) → one logit per label.
 * Unlike Hugging Face's, the layer has a bias: training the head alone standardises the frozen features
 * (GPT-2's final states share a large common part, which makes plain gradient descent on them crawl) and
 * folds the standardisation back into the weight and a bias, so the saved head is one affine layer. Trained from labelled texts with the trainer's pieces (its forward pass, AdamW, LoRA adapters, the
 * learning-rate schedule): the head alone on frozen features, or the head with LoRA adapters.
 *
 * Texts are right-padded in a batch. Attention is causal, so pads after a text's last token change nothing
 * before them, and the pooled position (the last real token) never sees a pad.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from '../model/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { crossEntropy, forwardHidden, frozenWeights, type ForwardContext, type ParamMap } from '../train/forward.js';
import { registerGradients } from '../train/gradients.js';
import { DEFAULT_LORA, checkLoraConfig, initLoraTensors, loraSet, type LoraConfig } from '../train/lora.js';
import { AdamW, learningRateAt } from '../train/optimizer.js';
import { TrainingRng, deriveSeed, permutation } from '../train/rng.js';
import { labelsOf, type LabelledText } from './data.js';

export type ClassifierMethod = 'head' | 'lora';

export interface ClassifierTrainingOptions {
  /** `head`: train the linear head on frozen features (fast); `lora`: the head and LoRA adapters. Default `head`. */
  method?: ClassifierMethod;
  epochs?: number;
  learningRate?: number;
  batchSize?: number;
  /** Tokens kept from the start of each text (default 128, at most the model's context). */
  maxLength?: number;
  weightDecay?: number;
  /** Adapter settings for method `lora` (default: the trainer's, rank 8 on c_attn). */
  lora?: Partial<LoraConfig>;
  /** The label order (default: order of first appearance in the training texts). */
  labels?: string[];
  seed?: number;
}

export interface ClassifierEpochEvent {
  epoch: number;
  epochs: number;
  trainLoss: number;
}

export interface ClassifierEvaluation {
  count: number;
  accuracy: number;
  /** Accuracy of always answering the training set's most frequent label. */
  majorityAccuracy: number;
  majorityLabel: string;
  labels: string[];
  /** confusion[actual][predicted]: counts, rows and columns in `labels` order. */
  confusion: number[][];
}

export class ClassifierError extends Error {
  override name = 'ClassifierError';
}

const DEFAULTS = {
  head: { epochs: 40, learningRate: 2e-2 },
  lora: { epochs: 6, learningRate: 5e-3 },
} as const;

/** How a classifier was built: what config.json records. */
export interface ClassifierSpec {
  labels: string[];
  method: ClassifierMethod;
  lora: LoraConfig | null;
  maxLength: number;
  padTokenId: number;
}

/**
 * A classifier ready to predict: the base model's weights (not owned unless `owner` is given), the head and
 * the adapters (owned).
 */
export class TrainedClassifier {
  constructor(
    readonly config: GPT2Config,
    readonly base: ParamMap,
    readonly tokenizer: Tokenizer,
    readonly spec: ClassifierSpec,
    /** `[n_labels, n_embd]` as Hugging Face's `score.weight`. */
    readonly head: tf.Tensor2D,
    /** `[n_labels]` */
    readonly bias: tf.Tensor1D,
    /** Adapter tensors by their trainer names (`h.0.attn.c_attn.lora_a`, ...); empty for method `head`. */
    readonly adapters: ReadonlyMap<string, tf.Tensor>,
    private readonly owner: { dispose(): void } | null = null,
  ) {
    if (head.shape[0] !== spec.labels.length || head.shape[1] !== config.nEmbd) {
      throw new ClassifierError(`the head has shape [${head.shape}], expected [${spec.labels.length}, ${config.nEmbd}]`);
    }
    if (bias.shape[0] !== spec.labels.length) throw new ClassifierError(`the head's bias has shape [${bias.shape}], expected [${spec.labels.length}]`);
  }

  get labels(): string[] {
    return this.spec.labels;
  }

  /** Label probabilities for each text, rows in `labels` order. */
  async predict(texts: readonly string[], batchSize = 16): Promise<number[][]> {
    const ids = texts.map((t) => tokenize(this.tokenizer, t, this.spec.maxLength, this.spec.padTokenId));
    const ctx = this.context();
    const out: number[][] = [];
    for (let start = 0; start < ids.length; start += batchSize) {
      const probs = tf.tidy(() => tf.softmax(logitsOf(this.base, ids.slice(start, start + batchSize), this.head, this.bias, ctx, this.spec.padTokenId)));
      out.push(...((await probs.array()) as number[][]));
      probs.dispose();
    }
    return out;
  }

  /** The most probable label of each text. */
  async classify(texts: readonly string[]): Promise<{ label: string; probabilities: Record<string, number> }[]> {
    const probs = await this.predict(texts);
    return probs.map((row) => ({
      label: this.labels[argmax(row)],
      probabilities: Object.fromEntries(this.labels.map((l, i) => [l, row[i]])),
    }));
  }

  async evaluate(examples: readonly LabelledText[], majorityLabel: string): Promise<ClassifierEvaluation> {
    return evaluationOf(this.labels, examples, await this.predict(examples.map((e) => e.text)), majorityLabel);
  }

  private context(): ForwardContext {
    const ctx: ForwardContext = { config: this.config };
    if (this.spec.lora) ctx.lora = loraSet(this.adapters, this.spec.lora);
    return ctx;
  }

  dispose(): void {
    this.head.dispose();
    this.bias.dispose();
    for (const t of this.adapters.values()) t.dispose();
    this.owner?.dispose();
  }
}

export interface ClassifierTrainingInit {
  config: GPT2Config;
  /** The base model's weights; read, never changed or freed. */
  params: ParamMap;
  tokenizer: Tokenizer;
  train: readonly LabelledText[];
  heldOut?: readonly LabelledText[];
  options?: ClassifierTrainingOptions;
  onEpoch?: (event: ClassifierEpochEvent) => void;
  signal?: AbortSignal;
}

export interface ClassifierTrainingResult {
  /** Owned by the caller (dispose()); it reads the base weights it was trained on. */
  classifier: TrainedClassifier;
  /** On the held-out texts, or null when there are none. */
  evaluation: ClassifierEvaluation | null;
  majorityLabel: string;
  history: ClassifierEpochEvent[];
}

export async function trainClassifier(init: ClassifierTrainingInit): Promise<ClassifierTrainingResult> {
  const { config, params, tokenizer, train, options = {} } = init;
  registerGradients();
  const method = options.method ?? 'head';
  if (method !== 'head' && method !== 'lora') throw new ClassifierError(`method must be "head" or "lora", got "${String(method)}"`);
  const epochs = options.epochs ?? DEFAULTS[method].epochs;
  const learningRate = options.learningRate ?? DEFAULTS[method].learningRate;
  const batchSize = options.batchSize ?? 8;
  const maxLength = Math.min(options.maxLength ?? 128, config.nPositions);
  const seed = options.seed ?? 0;
  for (const [name, value] of [['epochs', epochs], ['batchSize', batchSize], ['maxLength', maxLength]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new ClassifierError(`${name} must be a positive integer, got ${value}`);
  }
  if (!(learningRate > 0)) throw new ClassifierError(`learningRate must be positive, got ${learningRate}`);
  if (train.length === 0) throw new ClassifierError('there are no training texts');
  const labels = options.labels ?? labelsOf(train);
  if (labels.length < 2) throw new ClassifierError(`a classifier needs at least two labels, the training texts have ${labels.length}`);
  const unknown = [...train, ...(init.heldOut ?? [])].find((e) => !labels.includes(e.label));
  if (unknown) throw new ClassifierError(`the label "${unknown.label}" is not one of ${labels.join(', ')}`);
  const lora: LoraConfig | null = method === 'lora' ? { ...DEFAULT_LORA, ...options.lora } : null;
  if (lora) checkLoraConfig(lora);
  const spec: ClassifierSpec = { labels, method, lora, maxLength, padTokenId: tokenizer.eosTokenId ?? 0 };

  const ids = train.map((e) => tokenize(tokenizer, e.text, maxLength, spec.padTokenId));
  const targets = train.map((e) => labels.indexOf(e.label));
  const counts = labels.map((l) => train.filter((e) => e.label === l).length);
  const majorityLabel = labels[argmax(counts)];

  const trainable = new Map<string, tf.Variable>();
  let frozen: Map<string, tf.Tensor | null> | null = null;
  let features: Awaited<ReturnType<typeof standardised>> | null = null;
  let optimizer: AdamW | null = null;
  const history: ClassifierEpochEvent[] = [];
  try {
    // Inside tidy: the initial tensors go, the variables keep the data.
    const head = tf.tidy(() => tf.variable(tf.randomNormal([labels.length, config.nEmbd], 0, 0.02, 'float32', deriveSeed(seed, 0x4ead)), true)) as tf.Variable<tf.Rank.R2>;
    trainable.set('score.weight', head);
    const bias = tf.tidy(() => tf.variable(tf.zeros([labels.length]), true)) as tf.Variable<tf.Rank.R1>;
    trainable.set('score.bias', bias);
    if (lora) {
      for (const [name, t] of initLoraTensors(config, lora, deriveSeed(seed, 0x10a))) {
        trainable.set(name, tf.variable(t, true));
        t.dispose();
      }
      frozen = frozenWeights(params, tf.getBackend() === 'wasm');
      // The head replaces the output layer, so the embedding's transposed copy (vocabulary × width) is not needed.
      frozen.get('wte.weight')?.dispose();
      frozen.set('wte.weight', null);
    } else {
      // Head only: the base never changes, so each text's pooled feature is computed once.
      features = standardised(await featuresOf(config, params, ids, spec.padTokenId, init.signal));
    }
    optimizer = new AdamW(trainable, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: options.weightDecay ?? 0.01 });
    const rng = new TrainingRng(deriveSeed(seed, 0xd40b));
    const stepsPerEpoch = Math.ceil(train.length / batchSize);
    const totalSteps = stepsPerEpoch * epochs;
    const variables = [...trainable.values()];
    const names = new Map([...trainable].map(([name, v]) => [v.name, name]));
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = permutation(train.length, new TrainingRng(deriveSeed(seed, 0xe0c, epoch)));
      let lossSum = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        if (init.signal?.aborted) throw new ClassifierError('training was cancelled');
        const rows = order.slice(s * batchSize, (s + 1) * batchSize);
        const batchTargets = Int32Array.from(rows, (r) => targets[r]);
        const lossOf = (): tf.Scalar => {
          if (features) {
            const x = tf.gather(features!.values, tf.tensor1d(rows, 'int32'));
            return crossEntropy(tf.add(tf.matMul(x, head, false, true), bias) as tf.Tensor2D, batchTargets);
          }
          const ctx: ForwardContext = { config, frozen: frozen!, lora: loraSet(trainable, lora!), loraDropout: lora!.dropout, rng };
          return crossEntropy(logitsOf(params, rows.map((r) => ids[r]), head, bias, ctx, spec.padTokenId), batchTargets);
        };
        const { value, grads } = tf.variableGrads(lossOf, variables);
        const named = new Map(Object.entries(grads).map(([v, g]) => [names.get(v)!, g]));
        optimizer.apply(named, learningRateAt(epoch * stepsPerEpoch + s, { peak: learningRate, min: learningRate / 10, warmupSteps: 0, totalSteps }));
        for (const g of named.values()) g.dispose();
        lossSum += (await value.data())[0] * rows.length;
        value.dispose();
        await new Promise((resolve) => setImmediate(resolve));
      }
      const event = { epoch: epoch + 1, epochs, trainLoss: lossSum / train.length };
      history.push(event);
      init.onEpoch?.(event);
    }
    const adapters = new Map([...trainable].filter(([n]) => !n.startsWith('score.')).map(([n, v]) => [n, v.clone()]));
    // On standardised features (x − μ)/σ the head is W, b; on raw ones it is W/σ and b − W·(μ/σ).
    const [finalHead, finalBias] = tf.tidy(() => {
      if (!features) return [head.clone(), bias.clone()];
      const w = tf.div(head, features!.std) as tf.Tensor2D;
      return [w, tf.sub(bias, tf.squeeze(tf.matMul(w, tf.reshape(features!.mean, [-1, 1])), [1]))];
    }) as [tf.Tensor2D, tf.Tensor1D];
    const classifier = new TrainedClassifier(config, params, tokenizer, spec, finalHead, finalBias, adapters);
    try {
      const evaluation = init.heldOut && init.heldOut.length > 0 ? await classifier.evaluate(init.heldOut, majorityLabel) : null;
      return { classifier, evaluation, majorityLabel, history };
    } catch (error) {
      classifier.dispose();
      throw error;
    }
  } finally {
    optimizer?.dispose();
    for (const v of trainable.values()) v.dispose();
    if (frozen) for (const t of frozen.values()) t?.dispose();
    if (features) tf.dispose([features.values, features.mean, features.std]);
  }
}

/** Token ids of a text, cut to `maxLength`; an empty text becomes the pad (end-of-text) token alone. */
function tokenize(tokenizer: Tokenizer, text: string, maxLength: number, pad: number): number[] {
  const ids = tokenizer.encode(text).slice(0, maxLength);
  return ids.length > 0 ? ids : [pad];
}

/** Pooled final hidden states `[B, C]`: each row's last real token. */
function pooledHidden(params: ParamMap, rows: readonly number[][], ctx: ForwardContext, pad: number): tf.Tensor2D {
  const width = Math.max(...rows.map((r) => r.length));
  const inputs = new Int32Array(rows.length * width).fill(pad);
  rows.forEach((r, b) => inputs.set(r, b * width));
  const hidden = forwardHidden(params, inputs, rows.length, ctx);
  // A one-hot selection matrix picks the rows: its gradient is a matMul, where gather's needs a kernel wasm lacks.
  const picks = rows.map((r, b) => b * width + r.length - 1);
  const select = tf.oneHot(tf.tensor1d(picks, 'int32'), rows.length * width);
  return tf.matMul(tf.cast(select, 'float32'), hidden) as tf.Tensor2D;
}

function logitsOf(params: ParamMap, rows: readonly number[][], head: tf.Tensor2D, bias: tf.Tensor1D, ctx: ForwardContext, pad: number): tf.Tensor2D {
  return tf.add(tf.matMul(pooledHidden(params, rows, ctx, pad), head, false, true), bias) as tf.Tensor2D;
}

/** Features scaled to zero mean and unit variance per dimension (the input tensor is consumed). */
function standardised(features: tf.Tensor2D): { values: tf.Tensor2D; mean: tf.Tensor1D; std: tf.Tensor1D } {
  const out = tf.tidy(() => {
    const { mean, variance } = tf.moments(features, 0);
    const std = tf.add(tf.sqrt(variance), 1e-6) as tf.Tensor1D;
    return { values: tf.div(tf.sub(features, mean), std) as tf.Tensor2D, mean: mean as tf.Tensor1D, std };
  });
  features.dispose();
  return out;
}

/**
 * Every text's pooled feature `[N, C]` (no gradient: the base is frozen), batch by batch so that only one
 * batch's activations are alive at a time, letting the event loop run (a cancel) between batches.
 */
async function featuresOf(config: GPT2Config, params: ParamMap, ids: readonly number[][], pad: number, signal?: AbortSignal, batchSize = 16): Promise<tf.Tensor2D> {
  const parts: tf.Tensor2D[] = [];
  try {
    for (let start = 0; start < ids.length; start += batchSize) {
      if (signal?.aborted) throw new ClassifierError('training was cancelled');
      parts.push(tf.tidy(() => pooledHidden(params, ids.slice(start, start + batchSize), { config }, pad)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    return tf.concat(parts, 0) as tf.Tensor2D;
  } finally {
    tf.dispose(parts);
  }
}

export function evaluationOf(labels: string[], examples: readonly LabelledText[], probabilities: number[][], majorityLabel: string): ClassifierEvaluation {
  const confusion = labels.map(() => labels.map(() => 0));
  let correct = 0;
  let majority = 0;
  examples.forEach((e, i) => {
    const actual = labels.indexOf(e.label);
    if (actual < 0) throw new ClassifierError(`the label "${e.label}" is not one of ${labels.join(', ')}`);
    const predicted = argmax(probabilities[i]);
    confusion[actual][predicted] += 1;
    if (actual === predicted) correct += 1;
    if (e.label === majorityLabel) majority += 1;
  });
  const n = examples.length;
  return { count: n, accuracy: n ? correct / n : 0, majorityAccuracy: n ? majority / n : 0, majorityLabel, labels: [...labels], confusion };
}

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
