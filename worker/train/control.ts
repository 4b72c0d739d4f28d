/**
 * Pause, resume and cancel for a training run. The run checks it between micro-batches (every few seconds
 * on GPT-2 small), so requests take effect at the next such point, never in the middle of an update.
 */
export interface CancelOptions {
  /** Save a checkpoint of the last finished step before stopping, so the run can resume (default true). */
  checkpoint?: boolean;
}

export class TrainingControl {
  private pausedFlag = false;
  private cancelled: Required<CancelOptions> | null = null;
  private wake: (() => void)[] = [];

  /** Cancels the run when `signal` aborts (with a checkpoint). */
  static fromSignal(signal: AbortSignal): TrainingControl {
    const control = new TrainingControl();
    control.follow(signal);
    return control;
  }

  follow(signal: AbortSignal): void {
    if (signal.aborted) this.cancel();
    else signal.addEventListener('abort', () => this.cancel(), { once: true });
  }

  get paused(): boolean {
    return this.pausedFlag && this.cancelled === null;
  }

  /** Null while the run may go on; the cancel request once there is one. */
  get cancelRequest(): Readonly<Required<CancelOptions>> | null {
    return this.cancelled;
  }

  pause(): void {
    this.pausedFlag = true;
  }

  resume(): void {
    this.pausedFlag = false;
    this.release();
  }

  cancel(options: CancelOptions = {}): void {
    this.cancelled ??= { checkpoint: options.checkpoint ?? true };
    this.release();
  }

  /** Resolves at once unless paused; then when resumed or cancelled. */
  async untilRunning(): Promise<void> {
    while (this.paused) await new Promise<void>((resolve) => this.wake.push(resolve));
  }

  private release(): void {
    const waiting = this.wake;
    this.wake = [];
    waiting.forEach((resolve) => resolve());
  }
}
