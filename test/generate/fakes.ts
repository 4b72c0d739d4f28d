/**
 * A fake language model whose logits are a function of each row's history, and a small byte-level
 * tokenizer, so generation tests control every logit and every byte.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../worker/backend.js';
import { kthLargest } from '../../worker/kth-largest.js';
import type { ForwardOptions, GPT2Config, KvCache, LanguageModel } from '../../worker/model/types.js';
import type { Tokenizer } from '../../worker/tokenizer/types.js';

/** Logits for the next token of one row, given that row's tokens so far. */
export type LogitsFn = (history: readonly number[]) => ArrayLike<number>;

export function fakeConfig(vocabSize: number, nPositions: number, eosTokenId: number | null): GPT2Config {
  return {
    vocabSize,
    nPositions,
    nEmbd: 4,
    nLayer: 1,
    nHead: 1,
    nInner: 16,
    layerNormEpsilon: 1e-5,
    activation: 'gelu_new',
    scaleAttnWeights: true,
    scaleAttnByInverseLayerIdx: false,
    bosTokenId: eosTokenId,
    eosTokenId,
  };
}

/** Holds each row's history, plus one tensor per cache so leaks of caches show in tf.memory(). */
export class FakeCache implements KvCache {
  private readonly marker: tf.Tensor;
  disposed = false;

  constructor(
    readonly rows: number[][],
    readonly log: FakeModel['log'],
  ) {
    this.marker = tf.zeros([Math.max(rows.length, 1), Math.max(this.length, 1)]);
  }

  get batch(): number {
    return this.rows.length;
  }

  get length(): number {
    return this.rows[0]?.length ?? 0;
  }

  expand(k: number, _positions?: number): KvCache {
    this.log.push({ op: 'expand', rows: k });
    return new FakeCache(this.rows.flatMap((r) => Array.from({ length: k }, () => [...r])), this.log);
  }

  select(rows: number[]): KvCache {
    this.log.push({ op: 'select', rows: rows.length });
    return new FakeCache(rows.map((r) => [...this.rows[r]]), this.log);
  }

  truncate(n: number): void {
    for (const r of this.rows) r.length = Math.min(r.length, n);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.marker.dispose();
  }
}

export class FakeModel implements LanguageModel {
  readonly config: GPT2Config;
  readonly weightBytes = 0;
  /** Every forward call and cache operation, in order. */
  readonly log: { op: 'forward' | 'expand' | 'select'; rows: number; tokens?: number[][]; keep?: number }[] = [];
  /**
   * Honour a forward pass's screen as tightly as any model may: −∞ for every token outside the `keep` highest
   * processed scores (ties kept). Off: every logit, as a model without a screen returns.
   */
  screens = false;
  /** Screen as if the caller's processors did nothing (a wrong screen, to show a test can tell). */
  screenIgnoresProcessors = false;
  /** Called after each forward, e.g. to abort from "inside" a step. */
  afterForward: ((call: number) => void) | null = null;

  constructor(
    vocabSize: number,
    nPositions: number,
    eosTokenId: number | null,
    private readonly logitsOf: LogitsFn,
  ) {
    this.config = fakeConfig(vocabSize, nPositions, eosTokenId);
  }

  get forwards(): { rows: number; tokens?: number[][]; keep?: number }[] {
    return this.log.filter((e) => e.op === 'forward');
  }

  createCache(batch: number): KvCache {
    return new FakeCache(
      Array.from({ length: batch }, () => []),
      this.log,
    );
  }

  forward(tokens: number[][], cache: KvCache, options: ForwardOptions = {}): tf.Tensor {
    const fake = cache as FakeCache;
    if (fake.disposed) throw new Error('forward on a disposed cache');
    if (tokens.length !== fake.batch) throw new Error(`batch ${tokens.length} vs cache batch ${fake.batch}`);
    if (fake.length + tokens[0].length > this.config.nPositions) throw new RangeError('past nPositions');
    this.log.push({ op: 'forward', rows: tokens.length, tokens: tokens.map((t) => [...t]), keep: options.screen?.keep });
    const V = this.config.vocabSize;
    const out = new Float32Array(tokens.length * V);
    tokens.forEach((row, r) => {
      fake.rows[r].push(...row);
      const logits = this.logitsOf(fake.rows[r]);
      for (let i = 0; i < V; i++) out[r * V + i] = logits[i] ?? -10;
      const screen = options.screen;
      if (this.screens && screen) {
        const row = out.subarray(r * V, (r + 1) * V);
        const processed = Float32Array.from(row);
        if (!this.screenIgnoresProcessors) screen.process(r, processed);
        const kth = kthLargest(processed, screen.keep, new Float32Array(screen.keep));
        for (let i = 0; i < V; i++) if (processed[i] < kth) row[i] = -Infinity;
      }
    });
    this.afterForward?.(this.forwards.length);
    return tf.tensor2d(out, [tokens.length, V]);
  }

  dispose(): void {}
}

/** Logits that make `next` (and nothing else) the clear favourite. */
export function favour(vocabSize: number, next: number, margin = 5): Float32Array {
  const row = new Float32Array(vocabSize);
  row[next] = margin;
  return row;
}

/** Deterministic, smooth-ish pseudo-random logits for a history, for sampling tests. */
export function hashedLogits(vocabSize: number, spread = 1.5): LogitsFn {
  return (history) => {
    let h = 2166136261;
    for (const t of history.slice(-3)) h = Math.imul(h ^ t, 16777619);
    const row = new Float32Array(vocabSize);
    for (let i = 0; i < vocabSize; i++) {
      h = Math.imul(h ^ (i + 1), 16777619) >>> 0;
      row[i] = ((h % 10007) / 10007) * spread * 2 - spread;
    }
    return row;
  };
}

/**
 * Ids 0–255 are the single bytes; then one id per string in `extra`; the last id is `<|endoftext|>`.
 * Decoding replaces broken UTF-8 with U+FFFD, like the real tokenizer.
 */
export class FakeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly eosTokenId: number;
  private readonly bytes: Uint8Array[];

  constructor(readonly extra: string[] = []) {
    const encoder = new TextEncoder();
    this.bytes = [
      ...Array.from({ length: 256 }, (_, b) => Uint8Array.of(b)),
      ...extra.map((s) => encoder.encode(s)),
      encoder.encode('<|endoftext|>'),
    ];
    this.vocabSize = this.bytes.length;
    this.eosTokenId = this.vocabSize - 1;
  }

  /** Id of one of the `extra` strings. */
  id(piece: string): number {
    const i = this.extra.indexOf(piece);
    if (i < 0) throw new Error(`no token ${piece}`);
    return 256 + i;
  }

  encode(text: string): number[] {
    return [...new TextEncoder().encode(text)];
  }

  decode(ids: readonly number[]): string {
    const parts = ids.map((id) => this.bytes[id]);
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return new TextDecoder().decode(all);
  }

  tokenBytes(id: number): Uint8Array {
    return this.bytes[id];
  }
}

/** A model that emits `script` in order (then eos, or the last token again when eos is null). */
export function scriptedModel(vocabSize: number, nPositions: number, eos: number | null, promptLength: number, script: number[]): FakeModel {
  return new FakeModel(vocabSize, nPositions, eos, (history) => {
    const made = history.length - promptLength;
    const next = made < script.length ? script[made] : (eos ?? script[script.length - 1]);
    return favour(vocabSize, next);
  });
}

/** The backend the tests run on: wasm, as the app. */
export async function useWasmBackend(): Promise<void> {
  const { name } = await initBackend('wasm');
  if (name !== 'wasm') throw new Error(`tests need the wasm backend, got ${name}`);
}
