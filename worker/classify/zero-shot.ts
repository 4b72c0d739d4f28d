/**
 * Zero-shot classification: each label is scored as a continuation of a prompt template filled with the
 * text ("Review: {text}\nSentiment:" → " positive" / " negative"), and the labels' probabilities are
 * renormalised over the label set.
 *
 * A language model often prefers one label whatever the text (a word that is simply more frequent, or more
 * frequent after the template). Contextual calibration (Zhao et al., 2021, "Calibrate Before Use") measures
 * that preference on the template filled with content-free input (the empty string by default) and divides
 * it out: p_cal(label | x) ∝ p(label | x) / p(label | content-free), i.e. log-probabilities minus the
 * content-free ones, renormalised.
 */
import type { LanguageModel } from '../model/types.js';
import { scoreContinuations, type ScoreOptions } from '../score/score.js';
import type { Tokenizer } from '../tokenizer/types.js';

export const DEFAULT_ZERO_SHOT_TEMPLATE = 'Review: {text}\nSentiment:';
const TEXT_SLOT = '{text}';

export interface ZeroShotOptions {
  labels: readonly string[];
  /** Prompt with `{text}` where the text goes; default "Review: {text}\nSentiment:". */
  template?: string;
  /** Put before each label when it is scored: GPT-2 words carry their leading space. Default " ". */
  labelPrefix?: string;
  /** Divide out the label prior measured on content-free input. Default true. */
  calibrate?: boolean;
  /** Inputs that carry no content; their label probabilities are averaged. Default [""]. */
  contentFree?: readonly string[];
  /** Score labels by their total log-probability (default) or per token (`mean`, fairer to long labels). */
  reduce?: 'sum' | 'mean';
  score?: ScoreOptions;
}

export interface LabelScore {
  label: string;
  /** log P(label | prompt), summed (or averaged) over the label's tokens. */
  logProb: number;
  /** Probability renormalised over the labels, uncalibrated. */
  probability: number;
  /** Probability after calibration (equals `probability` when calibration is off). */
  calibratedProbability: number;
}

export interface ZeroShotResult {
  text: string;
  /** The chosen label: highest calibrated probability (or raw, when calibration is off). */
  label: string;
  /** What the uncalibrated model would choose. */
  uncalibratedLabel: string;
  scores: LabelScore[];
}

export interface ZeroShotClassifier {
  readonly labels: readonly string[];
  /** The content-free prior over the labels (null when calibration is off). */
  readonly prior: readonly number[] | null;
  classify(text: string): Promise<ZeroShotResult>;
}

export class ZeroShotError extends Error {
  override name = 'ZeroShotError';
}

/** Fills the template's `{text}` slots. */
export function renderZeroShotPrompt(template: string, text: string): string {
  if (!template.includes(TEXT_SLOT)) throw new ZeroShotError(`the template has no ${TEXT_SLOT} slot for the text: "${template}"`);
  return template.split(TEXT_SLOT).join(text);
}

/**
 * Prepares a classifier: checks the labels and template, and (calibrating) scores the content-free prompts
 * once, so classifying many texts costs one scoring call each.
 */
export async function createZeroShotClassifier(
  model: LanguageModel,
  tokenizer: Tokenizer,
  options: ZeroShotOptions,
): Promise<ZeroShotClassifier> {
  const labels = [...options.labels];
  if (labels.length < 2) throw new ZeroShotError(`zero-shot classification needs at least two labels, got ${labels.length}`);
  if (new Set(labels).size !== labels.length) throw new ZeroShotError('the labels must be different from each other');
  if (labels.some((l) => l.trim() === '')) throw new ZeroShotError('a label is empty');
  const template = options.template ?? DEFAULT_ZERO_SHOT_TEMPLATE;
  renderZeroShotPrompt(template, '');
  const prefix = options.labelPrefix ?? ' ';
  const labelIds = labels.map((l) => tokenizer.encode(prefix + l));
  const reduce = options.reduce ?? 'sum';
  const calibrate = options.calibrate ?? true;

  const labelLogProbs = async (text: string): Promise<number[]> => {
    const prompt = renderZeroShotPrompt(template, text);
    const { scores } = await scoreContinuations(model, tokenizer.encode(prompt), labelIds, options.score);
    return scores.map((s) => (reduce === 'mean' ? s.logProb / s.tokens.length : s.logProb));
  };

  let prior: number[] | null = null;
  if (calibrate) {
    const contentFree = options.contentFree ?? [''];
    if (contentFree.length === 0) throw new ZeroShotError('calibration needs at least one content-free input');
    const sums = new Array<number>(labels.length).fill(0);
    for (const input of contentFree) softmax(await labelLogProbs(input)).forEach((p, i) => (sums[i] += p));
    prior = sums.map((s) => s / contentFree.length);
  }

  return {
    labels,
    prior,
    async classify(text: string): Promise<ZeroShotResult> {
      const logProbs = await labelLogProbs(text);
      const probabilities = softmax(logProbs);
      const calibrated = prior === null ? probabilities : softmax(logProbs.map((lp, i) => lp - Math.log(prior![i])));
      const scores = labels.map((label, i) => ({ label, logProb: logProbs[i], probability: probabilities[i], calibratedProbability: calibrated[i] }));
      return { text, label: labels[argmax(calibrated)], uncalibratedLabel: labels[argmax(probabilities)], scores };
    },
  };
}

/** Classifies each text (see `createZeroShotClassifier`). */
export async function classifyZeroShot(
  model: LanguageModel,
  tokenizer: Tokenizer,
  texts: readonly string[],
  options: ZeroShotOptions,
): Promise<ZeroShotResult[]> {
  const classifier = await createZeroShotClassifier(model, tokenizer, options);
  const results: ZeroShotResult[] = [];
  for (const text of texts) results.push(await classifier.classify(text));
  return results;
}

function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
