/**
 * The training data: texts → token streams → fixed-length blocks, with a held-out split.
 *
 * Documents are joined GPT-2 style, each followed by end-of-text, into one stream that is cut into
 * blocks of `blockSize + 1` tokens (the inputs and, shifted by one, their targets). The held-out part is
 * whole documents when there are several of suitable size (so no sentence is both trained on and scored),
 * else the tail of the stream. Everything is a pure function of the texts, the options and the seed.
 */
import type { Tokenizer } from '../tokenizer/types.js';
import { TrainingRng, deriveSeed, permutation } from './rng.js';

export interface TrainingText {
  /** A file name or title: it names the document in the plan and in errors. */
  name: string;
  text: string;
}

export interface DatasetOptions {
  /** Input tokens per block (the model sees this many and predicts the next token at each). */
  blockSize: number;
  /** Distance between the starts of consecutive training blocks; below `blockSize` the blocks overlap. */
  stride: number;
  /** Share of the tokens held out to measure loss on text the model does not train on; 0 for none. */
  heldOutFraction: number;
  /** Held-out blocks beyond this many tokens are skipped (evenly), to bound the cost of one evaluation. */
  maxHeldOutTokens: number;
  seed: number;
}

/** A window of a token stream: `length` tokens from `start`, scored on the last `length - 1`. */
export interface Block {
  start: number;
  length: number;
}

export type SplitKind = 'documents' | 'tail' | 'none';

export interface Dataset {
  /** Input tokens per training block; smaller than asked when the training text is shorter. */
  blockSize: number;
  stride: number;
  train: Int32Array;
  heldOut: Int32Array;
  /** Training blocks, each `blockSize + 1` tokens long. */
  trainBlocks: Block[];
  /** Held-out windows, consecutive and not overlapping in their targets; the last may be shorter. */
  heldOutBlocks: Block[];
  split: SplitKind;
  trainDocuments: string[];
  heldOutDocuments: string[];
  /** Tokens of held-out text that evaluation skips because of `maxHeldOutTokens`. */
  heldOutTokensSkipped: number;
  /** A hash of the streams and the blocking, so a resumed run can tell that its data changed. */
  fingerprint: string;
}

export class TrainingDataError extends Error {
  override name = 'TrainingDataError';
}

export function buildDataset(texts: readonly TrainingText[], tokenizer: Tokenizer, options: DatasetOptions): Dataset {
  if (!Number.isInteger(options.blockSize) || options.blockSize < 1) {
    throw new TrainingDataError(`blockSize must be a positive integer, got ${options.blockSize}`);
  }
  if (!Number.isInteger(options.stride) || options.stride < 1) {
    throw new TrainingDataError(`stride must be a positive integer, got ${options.stride}`);
  }
  if (!(options.heldOutFraction >= 0 && options.heldOutFraction < 1)) {
    throw new TrainingDataError(`heldOutFraction must be in [0, 1), got ${options.heldOutFraction}`);
  }
  const documents = texts
    .map((t) => ({ name: t.name, tokens: tokenizeDocument(t.text, tokenizer) }))
    .filter((d) => d.tokens.length > (tokenizer.eosTokenId === null ? 0 : 1));
  if (documents.length === 0) throw new TrainingDataError('there is no text to train on (every document is empty)');

  const split = splitDocuments(documents, options.heldOutFraction, options.seed);
  const train = split.train;
  if (train.length < 2) {
    throw new TrainingDataError(`the training text is too short: ${train.length} token(s), at least 2 are needed`);
  }
  const blockSize = Math.min(options.blockSize, train.length - 1);
  const stride = Math.min(options.stride, blockSize);
  const trainBlocks = trainingBlocks(train.length, blockSize, stride);
  const allHeldOut = heldOutWindows(split.heldOut.length, blockSize);
  const heldOutBlocks = evenlySpaced(allHeldOut, Math.max(1, Math.floor(options.maxHeldOutTokens / blockSize)));
  const scored = (blocks: Block[]) => blocks.reduce((n, b) => n + b.length - 1, 0);

  return {
    blockSize,
    stride,
    train,
    heldOut: split.heldOut,
    trainBlocks,
    heldOutBlocks,
    split: split.kind,
    trainDocuments: split.trainNames,
    heldOutDocuments: split.heldOutNames,
    heldOutTokensSkipped: scored(allHeldOut) - scored(heldOutBlocks),
    fingerprint: fingerprint([train, split.heldOut], [blockSize, stride, heldOutBlocks.length]),
  };
}

function tokenizeDocument(text: string, tokenizer: Tokenizer): number[] {
  const ids = tokenizer.encode(text);
  if (tokenizer.eosTokenId !== null) ids.push(tokenizer.eosTokenId);
  return ids;
}

interface Split {
  kind: SplitKind;
  train: Int32Array;
  heldOut: Int32Array;
  trainNames: string[];
  heldOutNames: string[];
}

/**
 * Whole documents go to the held-out side (in a seeded order) until they reach the asked share; if no
 * choice lands within a factor of two of it (one huge document, or two equal ones), the tail of the
 * stream is held out instead, so the split never takes half the data by accident.
 */
function splitDocuments(documents: { name: string; tokens: number[] }[], fraction: number, seed: number): Split {
  const all = documents.map((d) => d.name);
  const total = documents.reduce((n, d) => n + d.tokens.length, 0);
  if (fraction === 0) return { kind: 'none', train: concat(documents), heldOut: new Int32Array(0), trainNames: all, heldOutNames: [] };

  const target = fraction * total;
  if (documents.length > 1) {
    const order = permutation(documents.length, new TrainingRng(deriveSeed(seed, 0x5911)));
    const held = new Set<number>();
    let heldTokens = 0;
    for (const i of order) {
      if (heldTokens >= target) break;
      if (held.size === documents.length - 1) break;
      if (heldTokens + documents[i].tokens.length > 2 * target) continue;
      held.add(i);
      heldTokens += documents[i].tokens.length;
    }
    if (heldTokens >= target / 2 && heldTokens <= 2 * target) {
      const trainDocs = documents.filter((_, i) => !held.has(i));
      const heldDocs = documents.filter((_, i) => held.has(i));
      return {
        kind: 'documents',
        train: concat(trainDocs),
        heldOut: concat(heldDocs),
        trainNames: trainDocs.map((d) => d.name),
        heldOutNames: heldDocs.map((d) => d.name),
      };
    }
  }
  const stream = concat(documents);
  const heldCount = Math.round(target);
  // Fewer than two held-out tokens cannot score anything, and the training side needs two as well.
  if (heldCount < 2 || stream.length - heldCount < 2) {
    return { kind: 'none', train: stream, heldOut: new Int32Array(0), trainNames: all, heldOutNames: [] };
  }
  const cut = stream.length - heldCount;
  let covered = 0;
  const heldOutNames: string[] = [];
  for (const d of documents) {
    if (covered + d.tokens.length > cut) heldOutNames.push(d.name);
    covered += d.tokens.length;
  }
  return { kind: 'tail', train: stream.slice(0, cut), heldOut: stream.slice(cut), trainNames: all, heldOutNames };
}

function concat(documents: { tokens: number[] }[]): Int32Array {
  const out = new Int32Array(documents.reduce((n, d) => n + d.tokens.length, 0));
  let at = 0;
  for (const d of documents) {
    out.set(d.tokens, at);
    at += d.tokens.length;
  }
  return out;
}

/** Blocks every `stride` tokens, plus one flush with the end so that the tail is trained on too. */
function trainingBlocks(n: number, blockSize: number, stride: number): Block[] {
  const span = blockSize + 1;
  const blocks: Block[] = [];
  let start = 0;
  for (; start + span <= n; start += stride) blocks.push({ start, length: span });
  const last = blocks[blocks.length - 1];
  if (last && last.start + span < n) blocks.push({ start: n - span, length: span });
  return blocks;
}

/** Windows that overlap by one token, so that every held-out token after the first is scored exactly once. */
function heldOutWindows(n: number, blockSize: number): Block[] {
  const blocks: Block[] = [];
  for (let start = 0; start + 1 < n; start += blockSize) {
    blocks.push({ start, length: Math.min(blockSize + 1, n - start) });
  }
  return blocks;
}

function evenlySpaced<T>(items: T[], count: number): T[] {
  if (items.length <= count) return items;
  return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count)]);
}

function fingerprint(streams: Int32Array[], numbers: number[]): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
  };
  for (const s of streams) {
    mix(s.length);
    for (const x of s) mix(x);
  }
  for (const x of numbers) mix(x);
  return h.toString(16).padStart(8, '0');
}

/** Inputs and targets of a batch of equally long blocks, row after row. */
export interface Batch {
  batch: number;
  /** Inputs per row. */
  length: number;
  inputs: Int32Array;
  targets: Int32Array;
}

export function makeBatch(stream: Int32Array, blocks: readonly Block[]): Batch {
  const length = blocks[0].length - 1;
  if (blocks.some((b) => b.length - 1 !== length)) throw new Error('makeBatch: the blocks of one batch must be equally long');
  const inputs = new Int32Array(blocks.length * length);
  const targets = new Int32Array(blocks.length * length);
  blocks.forEach((b, row) => {
    inputs.set(stream.subarray(b.start, b.start + length), row * length);
    targets.set(stream.subarray(b.start + 1, b.start + 1 + length), row * length);
  });
  return { batch: blocks.length, length, inputs, targets };
}

/**
 * The order of training: each epoch a seeded shuffle of the blocks, cut into micro-batches of `batchSize`,
 * of which `gradAccumSteps` make one optimizer step. A step is fully named by (epoch, step in epoch), which
 * is all a checkpoint needs to store to continue the data where it stopped.
 */
export class BatchSchedule {
  readonly microBatchesPerEpoch: number;
  readonly stepsPerEpoch: number;
  private cachedEpoch = -1;
  private cachedOrder: number[] = [];

  constructor(
    readonly numBlocks: number,
    readonly batchSize: number,
    readonly gradAccumSteps: number,
    readonly seed: number,
  ) {
    this.microBatchesPerEpoch = Math.ceil(numBlocks / batchSize);
    this.stepsPerEpoch = Math.ceil(this.microBatchesPerEpoch / gradAccumSteps);
  }

  /** Block indices of each micro-batch of one optimizer step. */
  step(epoch: number, stepInEpoch: number): number[][] {
    if (stepInEpoch < 0 || stepInEpoch >= this.stepsPerEpoch) throw new RangeError(`step ${stepInEpoch} is outside epoch`);
    const order = this.order(epoch);
    const micro: number[][] = [];
    const first = stepInEpoch * this.gradAccumSteps;
    const last = Math.min(first + this.gradAccumSteps, this.microBatchesPerEpoch);
    for (let m = first; m < last; m++) micro.push(order.slice(m * this.batchSize, (m + 1) * this.batchSize));
    return micro;
  }

  private order(epoch: number): number[] {
    if (epoch !== this.cachedEpoch) {
      this.cachedOrder = permutation(this.numBlocks, new TrainingRng(deriveSeed(this.seed, 0xe90c, epoch)));
      this.cachedEpoch = epoch;
    }
    return this.cachedOrder;
  }
}
