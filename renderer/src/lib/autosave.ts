/**
 * Autosave: edits are collected per document and written a moment after typing stops, or at once on
 * `flush()` (blur, page hide, switching documents). One save runs at a time; edits made meanwhile are
 * written right after it. A failed save keeps its edits and is tried again.
 */

export interface DocumentPatch {
  title?: string;
  body?: string;
}

export type SaveState = 'saved' | 'unsaved' | 'saving' | 'error';

export interface SaveStatus {
  state: SaveState;
  /** When the last save finished. */
  savedAt: number | null;
  /** Why the last save failed. */
  error: string | null;
}

export interface Timers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface AutosaverOptions {
  save(documentId: string, patch: DocumentPatch): Promise<unknown>;
  onStatus?(status: SaveStatus): void;
  delayMs?: number;
  retryMs?: number;
  timers?: Timers;
  now?(): number;
}

const defaultTimers: Timers = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class Autosaver {
  private readonly unsaved = new Map<string, DocumentPatch>();
  private timer: unknown = null;
  private running: Promise<void> | null = null;
  private status: SaveStatus = { state: 'saved', savedAt: null, error: null };
  private readonly delayMs: number;
  private readonly retryMs: number;
  private readonly timers: Timers;
  private readonly now: () => number;

  constructor(private readonly options: AutosaverOptions) {
    this.delayMs = options.delayMs ?? 800;
    this.retryMs = options.retryMs ?? 4000;
    this.timers = options.timers ?? defaultTimers;
    this.now = options.now ?? Date.now;
  }

  get current(): SaveStatus {
    return this.status;
  }

  /** True while some edit is not yet confirmed saved. */
  get dirty(): boolean {
    return this.unsaved.size > 0 || this.running !== null;
  }

  /** Records an edit; later fields win over earlier ones. */
  change(documentId: string, patch: DocumentPatch): void {
    this.unsaved.set(documentId, { ...this.unsaved.get(documentId), ...patch });
    if (this.status.state !== 'saving') this.setStatus({ ...this.status, state: 'unsaved' });
    this.restartTimer(this.delayMs);
  }

  /** Forgets unsaved edits of a document that no longer exists. */
  discard(documentId: string): void {
    this.unsaved.delete(documentId);
  }

  /** Saves everything now; resolves when all edits made so far are written (or a save failed). */
  async flush(): Promise<void> {
    this.stopTimer();
    while (this.running) await this.running;
    if (this.unsaved.size === 0) return;
    this.running = this.saveAll();
    try {
      await this.running;
    } finally {
      this.running = null;
    }
    // Edits that arrived during the save have their own timer running; nothing more to do here.
  }

  private async saveAll(): Promise<void> {
    const batch = [...this.unsaved];
    this.unsaved.clear();
    this.setStatus({ ...this.status, state: 'saving' });
    for (const [i, [documentId, patch]] of batch.entries()) {
      try {
        await this.options.save(documentId, patch);
      } catch (err) {
        // Put this and the remaining edits back under any newer ones, and try again later.
        for (const [id, older] of batch.slice(i)) this.unsaved.set(id, { ...older, ...this.unsaved.get(id) });
        this.setStatus({ ...this.status, state: 'error', error: err instanceof Error ? err.message : String(err) });
        this.restartTimer(this.retryMs);
        return;
      }
    }
    const state: SaveState = this.unsaved.size > 0 ? 'unsaved' : 'saved';
    this.setStatus({ state, savedAt: this.now(), error: null });
  }

  private restartTimer(ms: number): void {
    this.stopTimer();
    this.timer = this.timers.set(() => {
      this.timer = null;
      void this.flush();
    }, ms);
  }

  private stopTimer(): void {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
  }

  private setStatus(status: SaveStatus): void {
    this.status = status;
    this.options.onStatus?.(status);
  }
}
