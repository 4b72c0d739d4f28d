/**
 * The engine end to end: EngineHost → the real worker thread → the tiny fixture model, over the worker
 * protocol. Crash tests use the test-only `debug-crash` message, which the worker honours only with
 * INKLING_ENGINE_DEBUG=1 (set below, before any worker starts: a worker copies the env when it starts).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { EngineStatus } from '../../main/ipc/contract.js';
import { completeGPT2Config } from '../../worker/model/config.js';
import { randomWeights } from '../../worker/model/random.js';
import { nativeKernels, nativeKernelsNote } from '../../worker/model/kernels/native/native.js';
import { tempDir, writeModelFolder } from '../model/helpers.js';
import {
  EngineHost,
  type EngineCompletionEvent,
  type EngineCompletionRequest,
  type EngineDoneEvent,
} from '../../main/engine/host.js';

process.env.INKLING_ENGINE_DEBUG = '1';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const modelDir = path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2');

interface Outcome {
  events: EngineCompletionEvent[];
  end: EngineCompletionEvent;
}

/** Sends one request and collects its events until its last one. */
function request(
  host: EngineHost,
  req: Partial<EngineCompletionRequest> & { requestId: string; prefix: string },
  onEvent?: (event: EngineCompletionEvent) => void,
): Promise<Outcome> {
  const events: EngineCompletionEvent[] = [];
  return new Promise((resolve) => {
    host.complete({ documentId: 'doc', decoding: { maxNewTokens: 6, doSample: false }, ...req }, (event) => {
      events.push(event);
      onEvent?.(event);
      if (event.type !== 'delta') resolve({ events, end: event });
    });
  });
}

function done(outcome: Outcome): EngineDoneEvent {
  assert.equal(outcome.end.type, 'done', `expected done, got ${JSON.stringify(outcome.end)}`);
  return outcome.end as EngineDoneEvent;
}

function deltasOf(outcome: Outcome, alternative = 0): string {
  return outcome.events
    .filter((e): e is Extract<EngineCompletionEvent, { type: 'delta' }> => e.type === 'delta' && e.alternative === alternative)
    .map((e) => e.text)
    .join('');
}

function waitForStatus(host: EngineHost, state: EngineStatus['state']): Promise<EngineStatus> {
  return new Promise((resolve) => {
    const off = host.on('status', (status) => {
      if (status.state === state) {
        off();
        resolve(status);
      }
    });
  });
}

describe('engine host with the real worker', () => {
  const host = new EngineHost();

  before(async () => {
    const status = await host.start(modelDir, { backend: 'wasm' });
    assert.equal(status.state, 'ready', JSON.stringify(status));
  });
  after(() => host.stop());

  test('reports the backend and the model once ready', () => {
    const status = host.status();
    assert.equal(status.state, 'ready');
    assert.equal(status.backend, 'wasm');
    assert.equal(status.modelName, 'tiny-gpt2');
    assert.ok(status.backendReason.length > 0);
    // The tiny model is too small to gain from a second thread, so by default it runs on one, with no note.
    assert.equal(status.threads, 1);
    assert.equal(status.threadsNote, null);
    // Not asked for fast (nor INKLING_PRECISION): float32.
    assert.equal(status.precision, 'exact');
    assert.equal(status.precisionNote, null);
    // Prompts run on the native kernels wherever they were built and the CPU has AVX2 (our machines do).
    assert.equal(status.nativeKernels, nativeKernels() !== null);
    assert.equal(status.nativeKernelsNote, nativeKernelsNote());
    assert.equal(status.error, null);
  });

  test('streams deltas, then done; the deltas add up to the suggestion', async () => {
    const outcome = await request(host, { requestId: 'stream-1', prefix: 'Hello, my dog is', decoding: { maxNewTokens: 10 } });
    const end = done(outcome);
    assert.equal(end.requestId, 'stream-1');
    assert.equal(end.alternatives.length, 1);
    assert.ok(end.alternatives[0].length > 0);
    assert.ok(outcome.events.length >= 2, 'at least one delta before done');
    assert.equal(deltasOf(outcome), end.alternatives[0]);
    assert.ok(end.latencyMs > 0);
    assert.ok(end.promptTokens === 5);
  });

  test('a prefill-only request ends in done with no alternatives; the suggestion after it reuses its prompt', async () => {
    const prefix = 'A prefill warms the cache for the suggestion that comes after it';
    const warm = done(await request(host, { requestId: 'warm', prefix, prefillOnly: true }));
    assert.deepEqual(warm.alternatives, []);
    assert.ok(warm.promptTokens > 8);
    const after = done(await request(host, { requestId: 'after-warm', prefix }));
    assert.equal(after.reusedTokens, warm.promptTokens - 1);
    assert.ok(after.alternatives[0].length > 0);
  });

  test('several alternatives arrive, each with its own deltas', async () => {
    const outcome = await request(host, {
      requestId: 'alts',
      prefix: 'The weather today',
      numAlternatives: 3,
      decoding: { maxNewTokens: 5, doSample: true },
      engine: { seed: 1 },
    });
    const end = done(outcome);
    assert.equal(end.alternatives.length, 3);
    end.alternatives.forEach((text, i) => assert.equal(deltasOf(outcome, i), text));
  });

  test('a new request cancels the one in flight, which ends with cancelled', async () => {
    let second: Promise<Outcome> | null = null;
    const first = await request(
      host,
      {
        requestId: 'slow',
        prefix: 'Once upon a time',
        decoding: { maxNewTokens: 40 },
        engine: { debugStepDelayMs: 20 },
      },
      (event) => {
        if (event.type === 'delta' && second === null) second = request(host, { requestId: 'fast', prefix: 'Once upon a time there' });
      },
    );
    assert.equal(first.end.type, 'cancelled');
    assert.ok(second !== null);
    const secondOutcome = await second!;
    done(secondOutcome);
    // Nothing of the cancelled request arrives after its end.
    assert.equal(first.events.at(-1)!.type, 'cancelled');
  });

  test('latest wins across a burst of requests', async () => {
    const prefixes = ['I', 'I w', 'I wa', 'I wan', 'I want to'];
    const outcomes = prefixes.map((prefix, i) => request(host, { requestId: `burst-${i}`, prefix }));
    const results = await Promise.all(outcomes);
    results.slice(0, -1).forEach((r, i) => assert.equal(r.end.type, 'cancelled', `burst-${i}`));
    done(results.at(-1)!);
    // The answer to the last request is the one a lone request gets.
    const alone = done(await request(host, { requestId: 'alone', prefix: 'I want to', engine: { reusePrefix: false } }));
    assert.deepEqual(done(results.at(-1)!).alternatives, alone.alternatives);
  });

  test('cancel(id) ends the request with cancelled; the engine stays usable', async () => {
    const pending = request(
      host,
      { requestId: 'to-cancel', prefix: 'It was a dark', decoding: { maxNewTokens: 40 }, engine: { debugStepDelayMs: 20 } },
      (event) => {
        if (event.type === 'delta') host.cancel('to-cancel');
      },
    );
    assert.equal((await pending).end.type, 'cancelled');
    done(await request(host, { requestId: 'after-cancel', prefix: 'It was a dark and' }));
  });

  test('typing forward reuses the prefix and suggests exactly what a fresh run suggests', async () => {
    const text = 'The quick brown fox jumps over the lazy dog. Then the';
    const first = done(await request(host, { requestId: 'type-0', prefix: text }));
    const typed = done(await request(host, { requestId: 'type-1', prefix: text + ' fox' }));
    assert.ok(typed.reusedTokens > 0, `reusedTokens ${typed.reusedTokens}`);
    assert.ok(typed.reusedTokens >= first.promptTokens - 1);
    const fresh = done(await request(host, { requestId: 'type-fresh', prefix: text + ' fox', engine: { reusePrefix: false } }));
    assert.equal(fresh.reusedTokens, 0);
    assert.deepEqual(typed.alternatives, fresh.alternatives);
  });

  test('an edit at the start of the text invalidates the cache', async () => {
    done(await request(host, { requestId: 'edit-0', prefix: 'Dear Anna, thank you for the letter' }));
    const edited = done(await request(host, { requestId: 'edit-1', prefix: 'Hi Anna, thank you for the letter' }));
    assert.equal(edited.reusedTokens, 0);
    const middle = done(await request(host, { requestId: 'edit-2', prefix: 'Hi Anna, thanks for the letter' }));
    assert.ok(middle.reusedTokens > 0 && middle.reusedTokens < middle.promptTokens - 2, `reused ${middle.reusedTokens}`);
  });

  test('a document longer than the context uses its tail', async () => {
    const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    const end = done(await request(host, { requestId: 'long', prefix: long }));
    assert.ok(end.promptTokens <= 64 - 6, `prompt of ${end.promptTokens} tokens fits the context of 64`);
    assert.ok(end.promptTokens > 64 / 2);
  });

  test('invalid decoding options fail the request with INVALID_ARGUMENT', async () => {
    const bad = await request(host, { requestId: 'bad', prefix: 'Hi', decoding: { temperature: -1 } });
    assert.equal(bad.end.type, 'error');
    assert.equal((bad.end as Extract<EngineCompletionEvent, { type: 'error' }>).error.code, 'INVALID_ARGUMENT');
    done(await request(host, { requestId: 'good', prefix: 'Hi' }));
  });

  test('no tensors leak in the worker across many requests', async () => {
    done(await request(host, { requestId: 'leak-warm', prefix: 'A' }));
    const before = await host.memory();
    const words = 'we went out to see the river and the hills beyond it'.split(' ');
    for (let i = 1; i <= words.length; i++) {
      done(await request(host, { requestId: `leak-${i}`, prefix: words.slice(0, i).join(' '), numAlternatives: 1 + (i % 2) * 2, decoding: { doSample: i % 2 === 1, maxNewTokens: 4 } }));
    }
    const cancelled = request(host, { requestId: 'leak-cancel', prefix: 'cancel me', decoding: { maxNewTokens: 30 }, engine: { debugStepDelayMs: 5 } });
    done(await request(host, { requestId: 'leak-last', prefix: 'A' }));
    assert.equal((await cancelled).end.type, 'cancelled');
    const afterMemory = await host.memory();
    assert.ok(before.numTensors > 0);
    assert.equal(afterMemory.numTensors, before.numTensors);
  });

  // Last in this group: it switches the shared host to another model.
  test('start() again switches the model; the request in flight ends with cancelled', async () => {
    const inFlight = request(host, { requestId: 'before-switch', prefix: 'Switch', decoding: { maxNewTokens: 40 }, engine: { debugStepDelayMs: 10 } });
    const status = await host.start(path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2-f16'), { backend: 'wasm' });
    assert.equal((await inFlight).end.type, 'cancelled');
    assert.equal(status.state, 'ready');
    assert.equal(status.modelName, 'tiny-gpt2-f16');
    done(await request(host, { requestId: 'after-switch', prefix: 'Switch' }));
  });
});

describe('engine host threads', () => {
  test('two threads asked for on wasm: the status says 2, and completions match one thread\'s', async () => {
    const one = new EngineHost();
    const two = new EngineHost();
    try {
      const [statusOne, statusTwo] = await Promise.all([one.start(modelDir, { backend: 'wasm', threads: 1 }), two.start(modelDir, { backend: 'wasm', threads: 2 })]);
      assert.equal(statusTwo.state, 'ready', JSON.stringify(statusTwo));
      assert.equal(statusTwo.threads, 2);
      assert.equal(statusTwo.threadsNote, null);
      assert.equal(two.status().threads, 2, 'kept in the host\'s status');
      assert.equal(statusOne.threads, 1);
      const prefix = 'Hello, my dog is';
      const [a, b] = [done(await request(one, { requestId: 'one', prefix })), done(await request(two, { requestId: 'two', prefix }))];
      assert.deepEqual(b.alternatives, a.alternatives);
    } finally {
      await Promise.all([one.stop(), two.stop()]);
    }
  });

  test('two threads asked for where the backend cannot share: one thread, and the status says why', async () => {
    const host = new EngineHost();
    try {
      const status = await host.start(modelDir, { backend: 'cpu', threads: 2 });
      assert.equal(status.state, 'ready', JSON.stringify(status));
      assert.equal(status.backend, 'cpu');
      assert.equal(status.threads, 1);
      assert.match(status.threadsNote ?? '', /cpu backend/);
      assert.equal(status.nativeKernels, false);
      assert.match(status.nativeKernelsNote ?? '', /cpu backend runs its own kernels/);
    } finally {
      await host.stop();
    }
  });
});

describe('engine host precision', () => {
  test('fast on wasm: the status says fast and suggestions come; a start with exact reloads the model in float32', async () => {
    const host = new EngineHost();
    try {
      const fast = await host.start(modelDir, { backend: 'wasm', precision: 'fast' });
      assert.equal(fast.state, 'ready', JSON.stringify(fast));
      assert.equal(fast.precision, 'fast');
      assert.equal(fast.precisionNote, null);
      assert.equal(host.status().precision, 'fast', "kept in the host's status");
      // Past the prompt, each step has one new token: the int8 weights make these.
      const end = done(await request(host, { requestId: 'fast', prefix: 'Hello, my dog is', decoding: { maxNewTokens: 6, doSample: false } }));
      assert.equal(end.alternatives.length, 1);

      const exact = await host.start(modelDir, { backend: 'wasm', precision: 'exact' });
      assert.equal(exact.state, 'ready', JSON.stringify(exact));
      assert.equal(exact.precision, 'exact');
      assert.equal(exact.precisionNote, null);
    } finally {
      await host.stop();
    }
  });

  test('fast asked for on a model whose width is not a multiple of 32: exact, and the status says why', async () => {
    // The int8 kernels quantize inputs in groups of 32. GPT-2's vocabulary, so that its tokenizer fits.
    const config = completeGPT2Config({ nLayer: 1, nEmbd: 40, nHead: 4, nPositions: 32, vocabSize: 50257 });
    const dir = await writeModelFolder(tempDir('width-40'), config, randomWeights(config, 3));
    const host = new EngineHost();
    try {
      const status = await host.start(dir, { backend: 'wasm', precision: 'fast' });
      assert.equal(status.state, 'ready', JSON.stringify(status));
      assert.equal(status.precision, 'exact');
      assert.match(status.precisionNote ?? '', /multiple of 32/);
      done(await request(host, { requestId: 'odd', prefix: 'Hello', decoding: { maxNewTokens: 3, doSample: false } }));
    } finally {
      await host.stop();
    }
  });

  test('a precision the engine does not know fails the load with a clear error', async () => {
    const host = new EngineHost();
    try {
      const status = await host.start(modelDir, { backend: 'wasm', precision: 'int4' as 'fast' });
      assert.equal(status.state, 'error');
      assert.equal(status.error?.code, 'INVALID_MESSAGE');
      assert.match(status.error?.message ?? '', /precision must be exact or fast, got "int4"/);
    } finally {
      await host.stop();
    }
  });
});

describe('engine host crash recovery', () => {
  test('a worker that throws fails the request in flight with ENGINE_CRASHED, restarts, and serves the next', async () => {
    const host = new EngineHost({ restart: { baseDelayMs: 20 } });
    try {
      assert.equal((await host.start(modelDir, { backend: 'wasm' })).state, 'ready');
      const states: string[] = [];
      host.on('status', (s) => states.push(s.state));
      const ready = waitForStatus(host, 'ready');
      const inFlight = await request(
        host,
        { requestId: 'doomed', prefix: 'This will', decoding: { maxNewTokens: 40 }, engine: { debugStepDelayMs: 20 } },
        (event) => {
          if (event.type === 'delta' && event.text !== '') host.debugCrash('throw');
        },
      );
      assert.equal(inFlight.end.type, 'error');
      assert.equal((inFlight.end as Extract<EngineCompletionEvent, { type: 'error' }>).error.code, 'ENGINE_CRASHED');
      assert.equal(host.status().state, 'restarting');
      // A request made while the worker is down waits for the new one.
      const survivor = request(host, { requestId: 'survivor', prefix: 'This will' });
      await ready;
      assert.equal(states[0], 'restarting');
      assert.equal(states.at(-1), 'ready');
      done(await survivor);
    } finally {
      await host.stop();
    }
  });

  test('a worker that exits or runs out of memory is restarted too; a crash loop stops the restarts', async () => {
    const host = new EngineHost({
      restart: { baseDelayMs: 20, maxRestarts: 2, windowMs: 60_000 },
      resourceLimits: { maxOldGenerationSizeMb: 256 },
    });
    try {
      assert.equal((await host.start(modelDir, { backend: 'wasm' })).state, 'ready');

      let ready = waitForStatus(host, 'ready');
      const failed = request(host, { requestId: 'exit', prefix: 'Goodbye', decoding: { maxNewTokens: 40 }, engine: { debugStepDelayMs: 20 } }, (event) => {
        if (event.type === 'delta') host.debugCrash('exit');
      });
      const exitEnd = (await failed).end;
      assert.equal(exitEnd.type, 'error');
      assert.match((exitEnd as Extract<EngineCompletionEvent, { type: 'error' }>).error.message, /exit code 70/);
      await ready;

      ready = waitForStatus(host, 'ready');
      const oom = request(host, { requestId: 'oom', prefix: 'Memory', decoding: { maxNewTokens: 40 }, engine: { debugStepDelayMs: 20 } }, (event) => {
        if (event.type === 'delta') host.debugCrash('oom');
      });
      const oomEnd = (await oom).end;
      assert.equal(oomEnd.type, 'error');
      assert.match((oomEnd as Extract<EngineCompletionEvent, { type: 'error' }>).error.message, /out of memory/);
      await ready;
      done(await request(host, { requestId: 'after-oom', prefix: 'Memory' }));

      // A third crash within the window is one too many.
      const gaveUp = waitForStatus(host, 'error');
      host.debugCrash('exit');
      const status = await gaveUp;
      assert.equal(status.error?.code, 'ENGINE_CRASH_LOOP');
      const refused = await request(host, { requestId: 'refused', prefix: 'Anyone?' });
      assert.equal(refused.end.type, 'error');
      assert.equal((refused.end as Extract<EngineCompletionEvent, { type: 'error' }>).error.code, 'ENGINE_CRASH_LOOP');
    } finally {
      await host.stop();
    }
  });

  test('a model folder that does not load gives status error, and requests fail with its reason', async () => {
    const host = new EngineHost();
    try {
      const status = await host.start(path.join(repoRoot, 'no-such-model'), { backend: 'wasm' });
      assert.equal(status.state, 'error');
      assert.ok(status.error && status.error.message.length > 0);
      const refused = await request(host, { requestId: 'no-model', prefix: 'Hi' });
      assert.equal(refused.end.type, 'error');
    } finally {
      await host.stop();
    }
  });
});
