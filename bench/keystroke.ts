/**
 * Keystroke-to-suggestion latency through the real engine: EngineHost → worker thread → model, a 6-token
 * greedy suggestion after every typed character, with and without prefix reuse. Prints JSON.
 *
 *   node --import tsx bench/keystroke.ts MODEL_DIR [--backend wasm] [--doc-chars 1200] [--keystrokes 24]
 *                                                  [--max-context N]
 *
 * Each keystroke waits for its suggestion before the next one (a fast typist's requests would cancel each
 * other; this measures the full latency of each). The document is plain English prose, repeated to the
 * asked length, so the prompt is as long as a real one.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { EngineHost, type EngineDoneEvent } from '../main/engine/host.js';
import { SCREEN_ENV } from '../worker/model/gpt2.js';
import { DEFAULT_SETTINGS } from '../main/store/settings.js';

export interface KeystrokeBenchOptions {
  modelDir: string;
  backend?: string;
  /** Characters of document before the typed text. */
  docChars?: number;
  /** Characters typed (one suggestion each) per mode. */
  keystrokes?: number;
  maxContextTokens?: number;
  threads?: number;
  precision?: 'exact' | 'fast';
  /** false: the exact precision computes every logit (INKLING_SCREEN=off in the engine thread). */
  screen?: boolean;
  /**
   * The request after each keystroke. Default: the issue's, a greedy suggestion of exactly 6 tokens. 'app': the
   * app's default settings (sampled, 12 tokens at most, cut at the sentence end) for the inline suggestion
   * (`alternatives` 1) or for cycling alternatives (3).
   */
  request?: { kind: 'app'; alternatives: number };
}

export interface LatencySummary {
  keystrokes: number;
  medianMs: number;
  p90Ms: number;
  meanMs: number;
  /** Means over the keystrokes of the worker's breakdown. */
  meanPrefillMs: number;
  meanDecodeMs: number;
  meanTokenizeMs: number;
  meanReusedTokens: number;
  meanPromptTokens: number;
}

export interface KeystrokeBenchResult {
  bench: 'keystroke';
  model: string;
  backend: string;
  threads: number;
  precision: string;
  suggestionTokens: number;
  docChars: number;
  withReuse: LatencySummary;
  withoutReuse: LatencySummary;
  /** Median latency without reuse ÷ with reuse. */
  speedup: number;
}

const PROSE =
  'The river runs slowly past the old mill, where the children used to fish on summer evenings. ' +
  'Nobody remembers who built the bridge, but everyone in the village has a story about it. ' +
  'In the spring the water rises and covers the lower path, so people walk along the hill instead. ';
const TYPED = ' When the rain stopped, we walked down to the water and watched the light fade over the fields.';
const SUGGESTION_TOKENS = 6;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

function summarize(events: EngineDoneEvent[]): LatencySummary {
  const latencies = events.map((e) => e.latencyMs).sort((a, b) => a - b);
  return {
    keystrokes: events.length,
    medianMs: percentile(latencies, 0.5),
    p90Ms: percentile(latencies, 0.9),
    meanMs: mean(latencies),
    meanPrefillMs: mean(events.map((e) => e.timings.prefillMs)),
    meanDecodeMs: mean(events.map((e) => e.timings.decodeMs)),
    meanTokenizeMs: mean(events.map((e) => e.timings.tokenizeMs)),
    meanReusedTokens: mean(events.map((e) => e.reusedTokens)),
    meanPromptTokens: mean(events.map((e) => e.promptTokens)),
  };
}

function suggest(
  host: EngineHost,
  id: string,
  prefix: string,
  reusePrefix: boolean,
  request: KeystrokeBenchOptions['request'],
  prefillOnly = false,
): Promise<EngineDoneEvent> {
  const asked =
    request?.kind === 'app'
      ? { numAlternatives: request.alternatives, decoding: { ...DEFAULT_SETTINGS.decoding }, stopAtSentenceEnd: DEFAULT_SETTINGS.stopAtSentenceEnd, engine: { reusePrefix } }
      : { decoding: { maxNewTokens: SUGGESTION_TOKENS, doSample: false }, engine: { reusePrefix, minNewTokens: SUGGESTION_TOKENS, stop: [] } };
  return new Promise((resolve, reject) => {
    host.complete(
      { requestId: id, documentId: 'bench', prefix, ...asked, ...(prefillOnly ? { prefillOnly } : {}) },
      (event) => {
        if (event.type === 'done') resolve(event as EngineDoneEvent);
        else if (event.type === 'error') reject(new Error(`${event.error.code}: ${event.error.message}`));
        else if (event.type === 'cancelled') reject(new Error(`request ${id} was cancelled`));
      },
    );
  });
}

async function typeAlong(host: EngineHost, doc: string, keystrokes: number, reuse: boolean, request: KeystrokeBenchOptions['request']): Promise<EngineDoneEvent[]> {
  // Warm up on the document itself (first-call costs, and the cache a user has after opening it).
  await suggest(host, `warm-${reuse}`, doc, reuse, request);
  const events: EngineDoneEvent[] = [];
  for (let i = 1; i <= keystrokes; i++) {
    const typed = TYPED.repeat(Math.ceil(keystrokes / TYPED.length) + 1).slice(0, i);
    events.push(await suggest(host, `${reuse ? 'reuse' : 'fresh'}-${i}`, doc + typed, reuse, request));
  }
  return events;
}

export async function benchKeystroke(options: KeystrokeBenchOptions): Promise<KeystrokeBenchResult> {
  const docChars = options.docChars ?? 1200;
  const keystrokes = options.keystrokes ?? 24;
  const doc = PROSE.repeat(Math.ceil(docChars / PROSE.length)).slice(0, docChars).trimEnd();
  const host = new EngineHost();
  // The engine thread copies this process's environment when it starts, and reads INKLING_SCREEN then.
  const savedScreen = process.env[SCREEN_ENV];
  if (options.screen === false) process.env[SCREEN_ENV] = 'off';
  try {
    const status = await host
      .start(options.modelDir, {
        backend: options.backend,
        maxContextTokens: options.maxContextTokens,
        threads: options.threads,
        precision: options.precision,
      })
      .finally(() => {
        if (savedScreen === undefined) delete process.env[SCREEN_ENV];
        else process.env[SCREEN_ENV] = savedScreen;
      });
    if (status.state !== 'ready') throw new Error(`the engine did not start: ${status.error?.message ?? status.state}`);
    const withReuse = summarize(await typeAlong(host, doc, keystrokes, true, options.request));
    const withoutReuse = summarize(await typeAlong(host, doc, keystrokes, false, options.request));
    return {
      bench: 'keystroke',
      model: status.modelName,
      backend: status.backend,
      threads: status.threads ?? 1,
      precision: status.precision ?? 'exact',
      suggestionTokens: SUGGESTION_TOKENS,
      docChars: doc.length,
      withReuse,
      withoutReuse,
      speedup: withoutReuse.medianMs / withReuse.medianMs,
    };
  } finally {
    await host.stop();
  }
}

export interface FirstSuggestionResult {
  bench: 'first-suggestion';
  model: string;
  docChars: number;
  promptTokens: number;
  rounds: number;
  /** The first suggestion at a new place in a long document, nothing cached: median ms from request to done. */
  coldMs: number;
  /** The prefill-only request the editor sends when the caret comes to rest there. */
  prefillOnlyMs: number;
  /** Then a word typed and the suggestion asked for, as after the pause. */
  afterPrefillMs: number;
}

/**
 * The first suggestion at a new caret position in a long document, through the engine: cold, and after the
 * prefill-only request the editor sends when the caret comes to rest (renderer/src/lib/suggestions.ts). Each
 * round uses a document of its own, so that nothing is cached from the round before.
 */
export async function benchFirstSuggestion(options: Omit<KeystrokeBenchOptions, 'keystrokes' | 'request' | 'screen'> & { rounds?: number }): Promise<FirstSuggestionResult> {
  const docChars = options.docChars ?? 4000;
  const rounds = options.rounds ?? 3;
  const host = new EngineHost();
  try {
    const status = await host.start(options.modelDir, {
      backend: options.backend,
      maxContextTokens: options.maxContextTokens,
      threads: options.threads,
      precision: options.precision,
    });
    if (status.state !== 'ready') throw new Error(`the engine did not start: ${status.error?.message ?? status.state}`);
    const document = (tag: string) => `${tag}. ${PROSE.repeat(Math.ceil(docChars / PROSE.length))}`.slice(0, docChars).trimEnd();
    const cold: EngineDoneEvent[] = [];
    const prefills: EngineDoneEvent[] = [];
    const after: EngineDoneEvent[] = [];
    for (let round = 0; round < rounds; round++) {
      cold.push(await suggest(host, `cold-${round}`, document(`Cold ${round}`) + ' When', true, undefined));
      const warmed = document(`Warm ${round}`);
      prefills.push(await suggest(host, `prefill-${round}`, warmed, true, undefined, true));
      after.push(await suggest(host, `after-${round}`, warmed + ' When', true, undefined));
    }
    const median = (events: EngineDoneEvent[]) => percentile(events.map((e) => e.latencyMs).sort((a, b) => a - b), 0.5);
    return {
      bench: 'first-suggestion',
      model: status.modelName,
      docChars,
      promptTokens: cold[0].promptTokens,
      rounds,
      coldMs: median(cold),
      prefillOnlyMs: median(prefills),
      afterPrefillMs: median(after),
    };
  } finally {
    await host.stop();
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      backend: { type: 'string', default: 'wasm' },
      'doc-chars': { type: 'string' },
      keystrokes: { type: 'string' },
      'max-context': { type: 'string' },
    },
  });
  const modelDir = positionals[0];
  if (modelDir === undefined) {
    console.error('usage: node --import tsx bench/keystroke.ts MODEL_DIR [--backend wasm] [--doc-chars N] [--keystrokes N] [--max-context N]');
    process.exit(2);
  }
  const number = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const result = await benchKeystroke({
    modelDir: path.resolve(modelDir),
    backend: values.backend,
    docChars: number(values['doc-chars']),
    keystrokes: number(values.keystrokes),
    maxContextTokens: number(values['max-context']),
  });
  console.log(JSON.stringify(result, null, 2));
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  await main();
}
