// The fine-tuning API over a real store and a scripted engine: plans and estimates, bad input refused
// before anything is stored, runs recorded with their curves, styles, export, and runs offered again
// after a restart.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ApiHandlers, CompletionEvent, EngineStatus, FinetuneRun } from '../../main/ipc/contract.js';
import { dispatch } from '../../main/ipc/dispatch.js';
import { createEventBus } from '../../main/ipc/events.js';
import { createApiHandlers, type ApiEngine } from '../../main/ipc/handlers.js';
import { FinetuneService, type FinetuneEngine } from '../../main/engine/finetune.js';
import type { TrainingListener } from '../../main/engine/host.js';
import { openStore, type OpenedStore } from '../../main/store/index.js';
import type { StyleWeightsMessage } from '../../worker/protocol.js';
import type { CheckpointMeta, TrainingCheckpoint } from '../../worker/train/checkpoint.js';
import type { TrainingText } from '../../worker/train/data.js';
import type { ResolvedTrainingOptions, TrainingOptions, TrainingPlan } from '../../worker/train/options.js';

class FakeEngine implements ApiEngine {
  complete(_r: unknown, onEvent: (event: CompletionEvent) => void): void {
    onEvent({ requestId: 'x', type: 'cancelled' });
  }
  cancel(): void {}
  status(): EngineStatus {
    return { state: 'ready', backend: 'wasm', backendReason: 'test', modelName: 'tiny', error: null };
  }
}

const BLOCK = 16;

/** Trains nothing: one token per character, one step per 64 tokens, a loss that falls. */
class ScriptedTrainer implements FinetuneEngine {
  started: { runId: string; checkpoint: TrainingCheckpoint | null }[] = [];
  styles: (string | null)[] = [];
  exports: string[] = [];
  /** Set: the next run stops (as if the app was killed) after this many steps. */
  killAfter: number | null = null;
  /** Set: each step waits this long (so that a test can act in the middle of a run). */
  stepMs = 0;
  private cancelled = new Set<string>();

  private planOf(texts: TrainingText[]): TrainingPlan {
    const tokens = texts.reduce((n, t) => n + t.text.length, 0);
    return { method: 'lora', documents: texts.length, trainTokens: tokens, heldOutTokens: 0, blockSize: BLOCK, totalSteps: Math.max(1, Math.floor(tokens / 64)), tokensPerStep: 64, tokensToTrain: tokens, trainableParameters: 10 } as TrainingPlan;
  }

  async planTraining(texts: TrainingText[], options: TrainingOptions) {
    if (texts.every((t) => t.text === '')) throw Object.assign(new Error('there is no text to train on'), { code: 'TrainingDataError' });
    return { plan: this.planOf(texts), options: { ...options, lora: { rank: 2, alpha: 4, dropout: 0, targets: ['attn.c_attn'] } } as ResolvedTrainingOptions };
  }

  startTraining(runId: string, texts: TrainingText[], _o: unknown, checkpoint: TrainingCheckpoint | null, listener: TrainingListener): void {
    this.started.push({ runId, checkpoint });
    const plan = this.planOf(texts);
    const killAfter = this.killAfter;
    this.killAfter = null;
    void (async () => {
      listener.onEvent({ type: 'started', plan, resumedFromStep: checkpoint?.meta.step ?? null });
      let step = checkpoint?.meta.step ?? 0;
      if (step === 0) listener.onEvent({ type: 'evaluation', step: 0, heldOutLoss: 3, perplexity: Math.exp(3), improved: true });
      while (step < plan.totalSteps) {
        step++;
        listener.onEvent({ type: 'progress', step, totalSteps: plan.totalSteps, epoch: 1, epochs: 1, trainLoss: 3 - step / 10, learningRate: 1e-3, gradNorm: 1, heldOutLoss: null, heldOutPerplexity: null, tokensPerSecond: 500, elapsedMs: step * 100, etaMs: (plan.totalSteps - step) * 100 });
        await listener.onCheckpoint(fakeCheckpoint(step, 'periodic'));
        if (step === killAfter) {
          listener.onError({ code: 'ENGINE_STOPPED', message: 'the engine was stopped' });
          return;
        }
        if (this.stepMs > 0) await new Promise((resolve) => setTimeout(resolve, this.stepMs));
        if (this.cancelled.delete(runId)) {
          await listener.onCheckpoint(fakeCheckpoint(step, 'cancelled'));
          listener.onEvent({ type: 'finished', status: 'cancelled', step, heldOutLoss: null, perplexity: null });
          return;
        }
      }
      listener.onEvent({ type: 'evaluation', step, heldOutLoss: 2, perplexity: Math.exp(2), improved: true });
      await listener.onCheckpoint(fakeCheckpoint(step, 'final'));
      listener.onEvent({ type: 'finished', status: 'completed', step, heldOutLoss: 2, perplexity: Math.exp(2) });
    })();
  }

  pauseTraining(): void {}
  resumeTraining(): void {}
  cancelTraining(runId: string): void {
    this.cancelled.add(runId);
  }
  async setStyle(styleId: string | null, weights: StyleWeightsMessage | null): Promise<void> {
    assert.equal(weights === null, styleId === null);
    if (weights) assert.deepEqual([...weights.tensors.keys()], ['h.0.attn.c_attn.lora_b']);
    this.styles.push(styleId);
  }
  async exportStyle(dir: string): Promise<string> {
    this.exports.push(dir);
    return dir;
  }
}

function fakeCheckpoint(step: number, reason: CheckpointMeta['reason']): TrainingCheckpoint {
  const meta = { format: 1, step, reason, options: { method: 'lora', lora: { rank: 2, alpha: 4, dropout: 0, targets: ['attn.c_attn'] } } } as unknown as CheckpointMeta;
  return {
    meta,
    tensors: new Map([
      ['param/h.0.attn.c_attn.lora_b', { shape: [2], data: Float32Array.from([step, -step]) }],
      ['adam_m/h.0.attn.c_attn.lora_b', { shape: [2], data: Float32Array.from([0, 0]) }],
    ]),
  };
}

let dir: string;
let store: OpenedStore;
let trainer: ScriptedTrainer;
let pushed: FinetuneRun[];
let api: ApiHandlers;
let service: FinetuneService;

function open(): void {
  store = openStore(dir);
  const bus = createEventBus();
  pushed = [];
  bus.on('finetune', (run) => pushed.push(run));
  service = new FinetuneService({ store, engine: trainer, emit: (run) => bus.emit('finetune', run), modelName: 'tiny', dataDir: dir });
  api = createApiHandlers({ store, engine: new FakeEngine(), events: bus, finetune: service });
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'inkling-finetune-'));
  trainer = new ScriptedTrainer();
  open();
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const LONG = 'The keeper of the lighthouse writes to Marigold every evening. '.repeat(8);

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(check(), 'timed out waiting');
}

test('a plan counts tokens and steps; the time is unknown until a run measured the speed', async () => {
  const doc = store.createDocument('Letters');
  store.saveDocument(doc.id, { body: LONG });
  const request = { documentIds: [doc.id], files: [{ name: 'more.md', text: LONG }], settings: { method: 'lora' as const } };
  const plan = await api.planFinetune(request);
  assert.equal(plan.documents, 2);
  assert.equal(plan.trainTokens, LONG.length * 2);
  assert.equal(plan.tokensPerSecond, null);
  assert.equal(plan.estimatedMs, null);

  const run = await api.startFinetune(request);
  await until(() => store.finetune.getRun(run.id)?.state === 'done');
  const again = await api.planFinetune(request);
  assert.equal(again.tokensPerSecond, 500);
  assert.equal(again.estimatedMs, (again.tokensToTrain / 500) * 1000);
});

test('bad input is refused with a clear message before anything is stored', async () => {
  const refuse = async (request: unknown, code: string, message: RegExp) => {
    const outcome = await dispatch(api, 'startFinetune', [request]);
    assert.equal(outcome.ok, false, JSON.stringify(request).slice(0, 80));
    if (outcome.ok) return;
    assert.equal(outcome.error.code, code);
    assert.match(outcome.error.message, message);
  };
  const settings = { method: 'lora' };
  await refuse({ settings }, 'INVALID_INPUT', /choose at least one document or file/);
  await refuse({ files: [{ name: 'photo.png', text: '\u0089PNG\r\n\u001a\n\u0000\u0000' }], settings }, 'NOT_TEXT', /"photo.png" is not a text file/);
  await refuse({ files: [{ name: 'huge.txt', text: 'a'.repeat(50_000_000) }], settings }, 'TOO_LARGE', /"huge.txt" is too large/);
  await refuse({ files: [{ name: 'short.txt', text: 'Hi.' }], settings }, 'TOO_SHORT', /shorter than one training block/);
  await refuse({ files: [{ name: 'empty.txt', text: '' }], settings }, 'INVALID_INPUT', /empty/);
  await refuse({ files: [], settings: { method: 'sideways' } }, 'INVALID_INPUT', /method must be "lora" or "full"/);
  await refuse({ files: [], settings: { method: 'lora', learningRate: -1 } }, 'INVALID_INPUT', /learningRate/);
  await refuse({ documentIds: ['nope'], settings }, 'NOT_FOUND', /document nope/);
  assert.deepEqual(await api.listFinetuneRuns(), []);
  assert.deepEqual(store.models.list(), []);
  assert.equal(trainer.started.length, 0);
});

test('a run records its curve and perplexities, becomes a style, and the style switches, renames, exports and deletes', async () => {
  const run = await api.startFinetune({ files: [{ name: 'letters.txt', text: LONG }], settings: { method: 'lora', maxSteps: 5 }, name: 'Marigold' });
  assert.equal(run.state, 'running');
  await until(() => store.finetune.getRun(run.id)?.state === 'done');
  const [done] = await api.listFinetuneRuns();
  assert.equal(done!.name, 'Marigold');
  assert.equal(done!.step, done!.totalSteps);
  assert.ok(Math.abs(done!.perplexityBefore! - Math.exp(3)) < 1e-9);
  assert.ok(Math.abs(done!.perplexityAfter! - Math.exp(2)) < 1e-9);
  assert.deepEqual(done!.points[0], { step: 0, heldOutLoss: 3 });
  assert.equal(done!.points.at(-1)!.heldOutLoss, 2);
  assert.ok(pushed.some((r) => r.state === 'running' && r.step === 1 && r.etaMs !== null));
  assert.equal(pushed.at(-1)!.state, 'done');
  assert.ok(done!.styleId);

  // The style keeps the trained tensors; the run's checkpoints are gone.
  assert.deepEqual(store.models.list().map((m) => m.kind), ['checkpoint']);
  const [style] = await api.listStyles();
  assert.equal(style!.name, 'Marigold');
  assert.equal(style!.active, false);
  assert.deepEqual((await api.activateStyle(style!.id)).map((s) => s.active), [true]);
  assert.deepEqual(trainer.styles, [style!.id]);
  assert.equal((await api.renameStyle(style!.id, 'Letters to M.')).name, 'Letters to M.');

  const exported = await api.exportStyle(style!.id);
  assert.ok(exported.path.startsWith(path.join(dir, 'exports') + path.sep), exported.path);
  const named = await api.exportStyle(style!.id, 'mine');
  assert.equal(named.path, path.join(dir, 'exports', 'mine'));
  const outside = await dispatch(api, 'exportStyle', [style!.id, '../../etc']);
  assert.equal(outside.ok ? '' : outside.error.code, 'FORBIDDEN');

  await api.deleteStyle(style!.id);
  assert.deepEqual(trainer.styles, [style!.id, null], 'deleting the active style switches back to the base model');
  assert.deepEqual(await api.listStyles(), []);
  assert.deepEqual(store.models.list(), []);
});

test('a run cut short by a restart is offered as paused and resumes from its last checkpoint in the store', async () => {
  trainer.killAfter = 2;
  const run = await api.startFinetune({ files: [{ name: 'letters.txt', text: LONG }], settings: { method: 'lora' } });
  await until(() => store.finetune.getRun(run.id)?.state === 'paused');
  // The store was left with the run marked running by a harder kill; a restart offers it as paused.
  store.finetune.updateRun(run.id, { state: 'running' });
  store.close();
  open();
  const [offered] = await api.listFinetuneRuns();
  assert.equal(offered!.state, 'paused');
  assert.equal(offered!.step, 2);

  await api.resumeFinetune(run.id);
  assert.equal(trainer.started.length, 2);
  assert.equal(trainer.started[1]!.checkpoint?.meta.step, 2, 'resumed from the checkpoint in SQLite');
  await until(() => store.finetune.getRun(run.id)?.state === 'done');
});

test('without a model, listing is empty and training says why', async () => {
  const bare = createApiHandlers({ store, engine: new FakeEngine(), events: createEventBus() });
  assert.deepEqual(await bare.listFinetuneRuns(), []);
  const outcome = await dispatch(bare, 'planFinetune', [{ files: [{ name: 'a', text: LONG }], settings: { method: 'lora' } }]);
  assert.equal(outcome.ok, false);
  assert.match(outcome.ok ? '' : outcome.error.message, /fine-tuning needs a model/);
});

test('a run the engine refuses at once is recorded as failed, with the engine\'s message', async () => {
  trainer.startTraining = (_id, _t, _o, _c, listener) => listener.onError({ code: 'TRAINING_FAILED', message: 'the model does not fit in memory' });
  const run = await api.startFinetune({ files: [{ name: 'letters.txt', text: LONG }], settings: { method: 'full' } });
  assert.equal(run.state, 'failed');
  assert.deepEqual(run.error, { code: 'TRAINING_FAILED', message: 'the model does not fit in memory' });
  assert.equal(pushed.at(-1)!.state, 'failed');
  // Nothing is training, so another run may start.
  trainer.startTraining = ScriptedTrainer.prototype.startTraining.bind(trainer);
  const next = await api.startFinetune({ files: [{ name: 'letters.txt', text: LONG }], settings: { method: 'lora' } });
  await until(() => store.finetune.getRun(next.id)?.state === 'done');
});

test('the style that was on when the app closed is switched back on at the next start', async () => {
  const run = await api.startFinetune({ files: [{ name: 'letters.txt', text: LONG }], settings: { method: 'lora' } });
  await until(() => store.finetune.getRun(run.id)?.state === 'done');
  const [style] = await api.listStyles();
  await api.activateStyle(style!.id);
  store.close();
  trainer = new ScriptedTrainer();
  store = openStore(dir);
  const service = new FinetuneService({ store, engine: trainer, emit: () => {}, modelName: 'tiny', dataDir: dir });
  await service.restoreActiveStyle();
  assert.deepEqual(trainer.styles, [style!.id]);

  // A style of another model is refused rather than applied to the wrong weights.
  const other = new FinetuneService({ store, engine: trainer, emit: () => {}, modelName: 'gpt2-medium', dataDir: dir });
  await assert.rejects(other.activateStyle(style!.id), /trained on tiny, but gpt2-medium is loaded/);
});

test('closing the app stops a run with a checkpoint of its last step; it comes back paused, not cancelled', async () => {
  trainer.stepMs = 20;
  const run = await api.startFinetune({ files: [{ name: 'letters.txt', text: LONG.repeat(4) }], settings: { method: 'lora' } });
  await until(() => (store.finetune.getRun(run.id)?.step ?? 0) >= 2);
  await service.suspend();
  const stopped = store.finetune.getRun(run.id)!;
  assert.equal(stopped.state, 'paused');
  assert.ok(stopped.step < stopped.totalSteps);
  assert.equal(store.finetune.latestCheckpoint(run.id)?.meta.reason, 'cancelled');
  assert.equal(store.finetune.latestCheckpoint(run.id)?.meta.step, stopped.step);
});
