/**
 * The worker's assist lane: prompt templates run on a selection (rewrite, translate, continue) and zero-shot
 * classification, for the app's side panel.
 *
 * Assists do not go through the completion queue: a completion never waits behind a 64-token rewrite.
 * Both generation loops yield to the event loop after every step, so while an assist streams, the two
 * interleave step by step and a suggestion still arrives. Within the lane, latest wins: a new assist
 * cancels the one running (or waiting).
 */
import { createZeroShotClassifier, type ZeroShotClassifier } from './classify/zero-shot.js';
import type { LanguageModel } from './model/types.js';
import type { AssistMessage, ClassifyMessage, EngineError, WorkerToHost } from './protocol.js';
import { runTemplate } from './rewrite/templates.js';
import type { Tokenizer } from './tokenizer/types.js';

export interface AssistHost {
  post(message: WorkerToHost): void;
  toEngineError(err: unknown, fallbackCode: string): EngineError;
  /** The model assists run on (the active style's, so a model fine-tuned on parallel text translates). */
  model(): Promise<{ model: LanguageModel; tokenizer: Tokenizer }>;
  /** Test-only step delays are honoured (INKLING_ENGINE_DEBUG=1). */
  debug: boolean;
}

interface AssistJob {
  msg: AssistMessage;
  controller: AbortController;
}

export class AssistLane {
  private running: AssistJob | null = null;
  private waiting: AssistJob | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** While the model is swapped or reloaded (`closed` > 0) no assist may start; `gate` opens after. */
  private closed = 0;
  private gate: Promise<void> = Promise.resolve();
  /** The work in progress (one at a time), for `exclusive` to wait on. */
  private active: Promise<void> = Promise.resolve();
  private classifier: { key: string; model: LanguageModel; classifier: Promise<ZeroShotClassifier> } | null = null;

  constructor(private readonly host: AssistHost) {}

  run(msg: AssistMessage): void {
    this.running?.controller.abort();
    if (this.waiting !== null) this.host.post({ type: 'assist-cancelled', id: this.waiting.msg.id });
    const job: AssistJob = { msg, controller: new AbortController() };
    this.waiting = job;
    this.enqueue(async () => {
      if (this.waiting !== job) return; // replaced (and answered) while it waited
      this.waiting = null;
      this.running = job;
      try {
        await this.generate(job);
      } catch (err) {
        this.host.post({ type: 'assist-error', id: msg.id, error: this.host.toEngineError(err, 'GENERATION_FAILED') });
      } finally {
        this.running = null;
      }
    });
  }

  cancel(id: string): void {
    if (this.waiting?.msg.id === id) {
      this.host.post({ type: 'assist-cancelled', id });
      this.waiting = null;
    }
    if (this.running?.msg.id === id) this.running.controller.abort();
  }

  classify(msg: ClassifyMessage): void {
    this.enqueue(async () => {
      try {
        const { model, tokenizer } = await this.host.model();
        const key = JSON.stringify([msg.labels, msg.template, msg.calibrate]);
        // The calibration prior costs a scoring pass per content-free input: keep it while nothing changes.
        if (this.classifier === null || this.classifier.key !== key || this.classifier.model !== model) {
          const classifier = createZeroShotClassifier(model, tokenizer, { labels: msg.labels, template: msg.template, calibrate: msg.calibrate });
          this.classifier = { key, model, classifier };
          classifier.catch(() => (this.classifier = null));
        }
        const result = await (await this.classifier.classifier).classify(msg.text);
        this.host.post({ type: 'classified', id: msg.id, result });
      } catch (err) {
        this.host.post({ type: 'classified', id: msg.id, error: this.host.toEngineError(err, 'CLASSIFY_FAILED') });
      }
    });
  }

  /**
   * Runs `change` (a model swap or reload) once no assist uses the model; a running assist is cancelled,
   * those that arrive meanwhile wait for it.
   */
  async exclusive<T>(change: () => Promise<T>): Promise<T> {
    let open!: () => void;
    this.closed++;
    this.gate = new Promise((resolve) => (open = resolve));
    this.running?.controller.abort();
    try {
      await this.active;
      this.classifier = null;
      return await change();
    } finally {
      this.closed--;
      open();
    }
  }

  /** One piece of work after another, each started only while the model is not being changed. */
  private enqueue(work: () => Promise<void>): void {
    this.chain = this.chain.then(async () => {
      while (this.closed > 0) await this.gate;
      this.active = work();
      await this.active;
    });
  }

  private async generate(job: AssistJob): Promise<void> {
    const { msg, controller } = job;
    if (controller.signal.aborted) return this.host.post({ type: 'assist-cancelled', id: msg.id });
    const { model, tokenizer } = await this.host.model();
    const { debugStepDelayMs, ...options } = msg.options;
    // A few-shot prompt is long: keep at least half of a small model's context for it.
    const roomForPrompt = Math.floor(model.config.nPositions / 2);
    const requested = options.maxNewTokens ?? msg.template.generation?.maxNewTokens;
    if (requested !== undefined) options.maxNewTokens = Math.max(1, Math.min(requested, roomForPrompt));
    const stepDelayMs = this.host.debug ? (debugStepDelayMs ?? 0) : 0;
    const sleeper = stepDelayMs > 0 ? new Int32Array(new SharedArrayBuffer(4)) : null;
    let shown = '';
    let generatedTokens = 0;
    const result = await runTemplate(model, tokenizer, msg.template, msg.text, { ...options, numReturnSequences: 1, signal: controller.signal }, (event) => {
      generatedTokens++;
      if (sleeper !== null) Atomics.wait(sleeper, 0, 0, stepDelayMs);
      // The pattern puts a space after "French:"; the panel shows the text without it.
      const text = msg.keepLeadingSpace ? event.text : event.text.trimStart();
      if (text.length > shown.length && text.startsWith(shown)) {
        this.host.post({ type: 'assist-delta', id: msg.id, text: text.slice(shown.length) });
        shown = text;
      }
    });
    const sequence = result.sequences[0];
    if (controller.signal.aborted || sequence?.finishReason === 'aborted') return this.host.post({ type: 'assist-cancelled', id: msg.id });
    const output = msg.keepLeadingSpace ? (sequence?.text ?? '').trimEnd() : result.output;
    this.host.post({ type: 'assist-done', id: msg.id, output, finishReason: sequence?.finishReason ?? 'length', generatedTokens });
  }
}
