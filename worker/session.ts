/**
 * Prefix reuse: the keys/values of the last prompt stay in a KV cache, so a keystroke runs only the tokens
 * that changed. Token ids are compared, not text, because the text before the cursor retokenizes at its end
 * ("Hel" → "Hello" replaces a token): the cache is truncated to the longest common prefix of ids and only
 * the rest is run. An edit earlier in the text shortens that prefix to exactly the unchanged part.
 *
 * The generation loop (`generate`) builds its own cache through `model.createCache` and starts with a forward
 * pass over the whole prompt. `PreparedPrompt.model` composes with that unchanged: it is the model seen
 * through the session, whose first cache already holds the prompt and whose first forward pass answers with
 * the logits the prefill computed. Nothing else about the loop changes.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ForwardOptions, KvCache, LanguageModel, LogitsScreen } from './model/types.js';

/**
 * The tail of a long prompt the model sees. The window starts at a multiple of `stride`, chosen from the
 * prompt length alone, so typing forward keeps the same start (and the cache) for `stride` tokens before
 * the window slides — a window that slid by one token at every keystroke could never reuse anything. The
 * start depends on nothing but the prompt, so results do not depend on the requests that came before.
 */
export function contextWindow(ids: readonly number[], budget: number, stride: number): number[] {
  if (!Number.isInteger(budget) || budget < 1) throw new RangeError(`context budget must be ≥ 1 token, got ${budget}`);
  if (ids.length <= budget) return ids.slice();
  const step = Math.max(1, Math.min(stride, budget));
  const start = Math.ceil((ids.length - budget) / step) * step;
  return ids.slice(start);
}

export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** The session's cache together with the token id held at each of its positions. */
class TrackedCache implements KvCache {
  readonly ids: number[] = [];

  constructor(readonly inner: KvCache) {}

  get batch(): number {
    return this.inner.batch;
  }
  get length(): number {
    return this.inner.length;
  }
  expand(k: number, positions?: number): KvCache {
    return this.inner.expand(k, positions);
  }
  select(rows: number[]): KvCache {
    return this.inner.select(rows);
  }
  truncate(n: number): void {
    this.inner.truncate(n);
    if (this.ids.length > n) this.ids.length = n;
  }
  /** The session owns this cache: a generation loop that disposes "its" cache leaves it alone. */
  dispose(): void {}

  forward(model: LanguageModel, tokens: number[][], options?: ForwardOptions): tf.Tensor {
    const logits = model.forward(tokens, this.inner, options);
    this.ids.push(...tokens[0]);
    return logits;
  }
}

/** `prepare` was told to stop between two chunks; the chunks it ran stay in the cache. */
export class PrefillStopped extends Error {
  override name = 'PrefillStopped';
  constructor(readonly ranTokens: number) {
    super(`the prefill was stopped after ${ranTokens} tokens`);
  }
}

export interface PrepareOptions {
  reuse: boolean;
  /** The screen `generate` will ask its first pass for (generate's `promptScreen`). */
  screen?: LogitsScreen;
  /**
   * Run the missing tokens in passes of about this many, asking `shouldStop` between them: a long prompt
   * (seconds on a large model) can then be given up for a newer request, keeping what it ran. Each pass costs
   * a little more than one long one (its own output-layer row, fewer rows to share each packed panel of the
   * weights: 5–15 % for 128-token passes over 1,000 tokens of GPT-2 small), so only background work asks.
   */
  chunkTokens?: number;
  /** Asked between chunks; true throws `PrefillStopped`. */
  shouldStop?: () => boolean;
}

export interface PreparedPrompt {
  /** Pass this to `generate` with the same prompt ids: its prefill is already done. */
  readonly model: LanguageModel;
  readonly promptIds: readonly number[];
  /** Prompt tokens taken from the cache instead of being run (0 if the generation ran the prompt anew). */
  readonly reusedTokens: number;
  readonly prefillMs: number;
  /** Frees the prefill logits; the cache stays in the session. Call once the generation is over. */
  release(): void;
}

export class PrefixSession {
  private cache: TrackedCache | null = null;

  constructor(readonly model: LanguageModel) {}

  /** Token ids whose keys/values the cache holds (for tests and diagnostics). */
  get cachedIds(): readonly number[] {
    return this.cache?.ids ?? [];
  }

  /**
   * Runs the part of `promptIds` the cache does not hold, so that only that part costs time. With
   * `reuse: false` the cache is cleared first (benchmarks, and a check that reuse changes nothing). `screen`:
   * the one `generate` will ask its first pass for (generate's `promptScreen`), so that the output layer needs
   * only the logits it looks at; a first pass that asks otherwise runs the prompt again.
   */
  prepare(promptIds: readonly number[], options: PrepareOptions): PreparedPrompt {
    if (promptIds.length === 0) throw new RangeError('the prompt must hold at least one token');
    const started = performance.now();
    const cache = (this.cache ??= new TrackedCache(this.model.createCache(1)));
    // At least the last prompt token is run again: its logits are what the first new token is chosen from.
    const reused = options.reuse ? Math.min(commonPrefixLength(cache.ids, promptIds), promptIds.length - 1) : 0;
    const forwardOptions = options.screen ? { screen: options.screen } : undefined;
    let logits: tf.Tensor;
    try {
      cache.truncate(reused);
      let at = reused;
      for (const end of chunkEnds(reused, promptIds.length, options.chunkTokens)) {
        cache.forward(this.model, [promptIds.slice(at, end)], forwardOptions).dispose();
        at = end;
        if (options.shouldStop?.()) throw new PrefillStopped(at - reused);
      }
      logits = cache.forward(this.model, [promptIds.slice(at)], forwardOptions);
    } catch (err) {
      if (!(err instanceof PrefillStopped)) this.reset();
      throw err;
    }
    const view = new SessionModelView(this.model, cache, promptIds.slice(), logits, options.screen?.key ?? null);
    const prefillMs = performance.now() - started;
    return {
      model: view,
      promptIds: view.promptIds,
      // A generation loop that did not start from the prepared prompt ran everything again.
      get reusedTokens() {
        return view.ranPromptAgain ? 0 : reused;
      },
      prefillMs,
      release: () => view.release(),
    };
  }

  /** Forget everything cached (after an error, or to free memory). */
  reset(): void {
    this.cache?.inner.dispose();
    this.cache = null;
  }

  dispose(): void {
    this.reset();
  }
}

/**
 * Where the passes before the last one end, for tokens [from, to) in passes of about `chunk`. No pass is
 * shorter than half a chunk, so that none falls to the decode step's kernels (up to 4 rows), which stream the
 * weights for so few rows.
 */
export function chunkEnds(from: number, to: number, chunk: number | undefined): number[] {
  if (chunk === undefined) return [];
  if (!Number.isInteger(chunk) || chunk < 8) throw new RangeError(`chunkTokens must be an integer ≥ 8, got ${chunk}`);
  const ends: number[] = [];
  for (let at = from; to - at > chunk + chunk / 2; at += chunk) ends.push(at + chunk);
  return ends;
}

/**
 * The model as `generate` should see it for one prepared prompt. Its caches come out of the session cache
 * (the cache itself for one sequence, an expanded copy for several), already holding the prompt; the first
 * forward pass on such a cache returns the prefill's logits instead of running the prompt again. Any other
 * first call (a different prompt, all-position logits) is run for real, so the view never returns a wrong
 * answer — it can only lose the saving.
 */
class SessionModelView implements LanguageModel {
  // Caches handed out whose first forward pass is still to come.
  private readonly primed = new Set<KvCache>();
  private released = false;
  /** The first forward pass was not the prepared prompt, so it ran for real. */
  ranPromptAgain = false;

  constructor(
    private readonly base: LanguageModel,
    private readonly session: TrackedCache,
    readonly promptIds: number[],
    private readonly promptLogits: tf.Tensor,
    /** The screen the prompt's logits went through (its key), or null: every logit. */
    private readonly screenKey: string | null,
  ) {}

  get config() {
    return this.base.config;
  }
  get weightBytes(): number {
    return this.base.weightBytes;
  }

  createCache(batch: number): KvCache {
    this.assertLive();
    const cache = batch === 1 ? this.session : this.session.expand(batch);
    this.primed.add(cache);
    return cache;
  }

  forward(tokens: number[][], cache: KvCache, options?: ForwardOptions): tf.Tensor {
    this.assertLive();
    if (this.primed.delete(cache)) {
      const isPrompt =
        !options?.allPositions &&
        cache.length === this.promptIds.length &&
        tokens.length === cache.batch &&
        tokens.every((row) => row.length === this.promptIds.length && commonPrefixLength(row, this.promptIds) === row.length) &&
        // Every logit serves any request; screened ones only the same screen.
        (this.screenKey === null || options?.screen?.key === this.screenKey);
      // One row (as generate asks: its prefill's row serves every sequence) shares the data; tfjs's wasm tile
      // copies element by element, ~6 ms for GPT-2's 50,257 logits.
      if (isPrompt) return tokens.length === 1 ? this.promptLogits.clone() : tf.tile(this.promptLogits, [tokens.length, 1]);
      this.ranPromptAgain = true;
      cache.truncate(0);
    }
    if (cache === this.session) return this.session.forward(this.base, tokens, options);
    return this.base.forward(tokens, cache, options);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.promptLogits.dispose();
    this.primed.clear();
  }

  /** The base model belongs to the worker, not to one generation. */
  dispose(): void {}

  private assertLive(): void {
    if (this.released) throw new Error('this prepared prompt was released; prepare the prompt again');
  }
}
