/**
 * Fine-tuning in the store: runs (settings, state, loss curve, perplexity before/after), their checkpoints,
 * and the styles finished runs become.
 *
 * Checkpoint and style weights are `models` rows of kind 'checkpoint' (chunked files with SHA-256), so a
 * damaged blob is detected when it is read back. A checkpoint is two files: `state.json` (the engine's
 * `CheckpointMeta`) and `tensors.safetensors`.
 */
import { randomUUID } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { AppError, FinetuneMethod, FinetuneRun, FinetuneSettings, FinetuneState, LossPoint, Style } from '../ipc/contract.js';
import { SafetensorsReader } from '../../worker/model/safetensors.js';
import type { CheckpointMeta, CheckpointSink, CheckpointTensor, TrainingCheckpoint } from '../../worker/train/checkpoint.js';
import type { TrainingText } from '../../worker/train/data.js';
import { StoreError, invalidInput } from './errors.js';
import type { ModelStore } from './index.js';

export const FINETUNE_STATES: readonly FinetuneState[] = ['queued', 'running', 'paused', 'done', 'failed', 'cancelled'];

export interface NewRun {
  name: string;
  modelName: string;
  settings: FinetuneSettings;
  texts: TrainingText[];
  totalSteps: number;
}

export interface RunPatch {
  state?: FinetuneState;
  step?: number;
  totalSteps?: number;
  perplexityBefore?: number | null;
  perplexityAfter?: number | null;
  tokensPerSecond?: number | null;
  error?: AppError | null;
  finishedAt?: number | null;
  /** Appended to the curve; a point for a step already there is merged into it. */
  points?: LossPoint[];
}

/** Adapter (LoRA) or full weights of a style, as the engine loads them. */
export interface StyleWeights {
  method: FinetuneMethod;
  lora: unknown;
  tensors: Map<string, CheckpointTensor>;
}

interface RunRow {
  id: string;
  name: string;
  model_name: string;
  method: FinetuneMethod;
  state: FinetuneState;
  settings: string;
  step: number;
  total_steps: number;
  perplexity_before: number | null;
  perplexity_after: number | null;
  tokens_per_second: number | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  points: string;
  style_id: string | null;
}

interface StyleRow {
  id: string;
  run_id: string | null;
  name: string;
  model_name: string;
  method: FinetuneMethod;
  lora: string | null;
  model_id: string;
  active: number;
  perplexity_before: number | null;
  perplexity_after: number | null;
  created_at: number;
}

const STATE_FILE = 'state.json';
const TENSORS_FILE = 'tensors.safetensors';
/** Checkpoints kept per run: the newest, and one before it in case the newest is damaged. */
const KEEP_CHECKPOINTS = 2;

/**
 * Float32 tensors as one safetensors buffer. The engine's `writeSafetensors` writes only to files; the
 * store needs bytes, and the format is a length, a JSON header and the raw data.
 */
export function encodeTensors(tensors: ReadonlyMap<string, CheckpointTensor>): Buffer {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at);
    at += t.data.byteLength;
  }
  return out;
}

export function decodeTensors(bytes: Uint8Array, label: string): Map<string, CheckpointTensor> {
  const reader = SafetensorsReader.fromBuffer(bytes, label);
  try {
    const tensors = new Map<string, CheckpointTensor>();
    for (const [name, info] of reader.tensors) tensors.set(name, { shape: [...info.shape], data: reader.readFloat32(name) });
    return tensors;
  } finally {
    reader.close();
  }
}

export function createFinetuneStore(db: Database, now: () => number, models: ModelStore) {
  const runColumns = `r.id, r.name, r.model_name, r.method, r.state, r.settings, r.step, r.total_steps, r.perplexity_before,
    r.perplexity_after, r.tokens_per_second, r.error, r.created_at, r.updated_at, r.finished_at, r.points,
    (SELECT s.id FROM styles s WHERE s.run_id = r.id) AS style_id`;
  const q = {
    insertRun: db.prepare(
      `INSERT INTO finetune_runs (id, name, model_name, method, state, settings, total_steps, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
    ),
    insertText: db.prepare('INSERT INTO finetune_texts (run_id, seq, name, text) VALUES (?, ?, ?, ?)'),
    texts: db.prepare<[string], { name: string; text: string }>('SELECT name, text FROM finetune_texts WHERE run_id = ? ORDER BY seq'),
    runs: db.prepare<[], RunRow>(`SELECT ${runColumns} FROM finetune_runs r ORDER BY r.created_at DESC, r.rowid DESC`),
    run: db.prepare<[string], RunRow>(`SELECT ${runColumns} FROM finetune_runs r WHERE r.id = ?`),
    deleteRun: db.prepare<[string]>('DELETE FROM finetune_runs WHERE id = ?'),
    insertCheckpoint: db.prepare('INSERT INTO finetune_checkpoints (run_id, step, reason, model_id, created_at) VALUES (?, ?, ?, ?, ?)'),
    checkpoints: db.prepare<[string], { id: number; model_id: string; step: number }>(
      'SELECT id, model_id, step FROM finetune_checkpoints WHERE run_id = ? ORDER BY id DESC',
    ),
    deleteCheckpoint: db.prepare<[number]>('DELETE FROM finetune_checkpoints WHERE id = ?'),
    insertStyle: db.prepare(
      `INSERT INTO styles (id, run_id, name, model_name, method, lora, model_id, perplexity_before, perplexity_after, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    styles: db.prepare<[], StyleRow>('SELECT * FROM styles ORDER BY created_at DESC, rowid DESC'),
    style: db.prepare<[string], StyleRow>('SELECT * FROM styles WHERE id = ?'),
    renameStyle: db.prepare<[string, string]>('UPDATE styles SET name = ? WHERE id = ?'),
    deleteStyle: db.prepare<[string]>('DELETE FROM styles WHERE id = ?'),
    deactivateAll: db.prepare('UPDATE styles SET active = 0'),
    activate: db.prepare<[string]>('UPDATE styles SET active = 1 WHERE id = ?'),
  };

  const toRun = (row: RunRow): FinetuneRun => ({
    id: row.id,
    name: row.name,
    modelName: row.model_name,
    method: row.method,
    state: row.state,
    settings: JSON.parse(row.settings) as FinetuneSettings,
    step: row.step,
    totalSteps: row.total_steps,
    points: JSON.parse(row.points) as LossPoint[],
    perplexityBefore: row.perplexity_before,
    perplexityAfter: row.perplexity_after,
    tokensPerSecond: row.tokens_per_second,
    etaMs: null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
    error: row.error === null ? null : (JSON.parse(row.error) as AppError),
    styleId: row.style_id,
  });

  const toStyle = (row: StyleRow): Style => ({
    id: row.id,
    name: row.name,
    runId: row.run_id,
    method: row.method,
    modelName: row.model_name,
    createdAt: row.created_at,
    active: row.active === 1,
    perplexityBefore: row.perplexity_before,
    perplexityAfter: row.perplexity_after,
  });

  function getRun(id: string): FinetuneRun | null {
    const row = q.run.get(id);
    return row ? toRun(row) : null;
  }

  function requireRun(id: string): FinetuneRun {
    const run = getRun(id);
    if (run === null) throw new StoreError('NOT_FOUND', `No fine-tuning run with id ${JSON.stringify(id)}.`);
    return run;
  }

  function createRun(input: NewRun): FinetuneRun {
    if (typeof input.name !== 'string' || input.name.trim() === '') throw invalidInput('A run needs a name', input.name);
    if (!Array.isArray(input.texts) || input.texts.length === 0) throw invalidInput('A run needs at least one text', input.texts);
    const id = randomUUID();
    const time = now();
    db.transaction(() => {
      q.insertRun.run(id, input.name.trim(), input.modelName, input.settings.method, JSON.stringify(input.settings), input.totalSteps, time, time);
      input.texts.forEach((t, seq) => q.insertText.run(id, seq, t.name, t.text));
    })();
    return requireRun(id);
  }

  function updateRun(id: string, patch: RunPatch): FinetuneRun {
    const run = requireRun(id);
    if (patch.state !== undefined && !FINETUNE_STATES.includes(patch.state)) throw invalidInput('Unknown run state', patch.state);
    const sets: string[] = ['updated_at = @updated_at'];
    const values: Record<string, unknown> = { id, updated_at: now() };
    const set = (column: string, value: unknown) => {
      sets.push(`${column} = @${column}`);
      values[column] = value;
    };
    if (patch.state !== undefined) set('state', patch.state);
    if (patch.step !== undefined) set('step', patch.step);
    if (patch.totalSteps !== undefined) set('total_steps', patch.totalSteps);
    if (patch.perplexityBefore !== undefined) set('perplexity_before', patch.perplexityBefore);
    if (patch.perplexityAfter !== undefined) set('perplexity_after', patch.perplexityAfter);
    if (patch.tokensPerSecond !== undefined) set('tokens_per_second', patch.tokensPerSecond);
    if (patch.error !== undefined) set('error', patch.error === null ? null : JSON.stringify(patch.error));
    if (patch.finishedAt !== undefined) set('finished_at', patch.finishedAt);
    if (patch.points !== undefined && patch.points.length > 0) set('points', JSON.stringify(mergePoints(run.points, patch.points)));
    db.prepare(`UPDATE finetune_runs SET ${sets.join(', ')} WHERE id = @id`).run(values);
    return requireRun(id);
  }

  /** Runs a restart interrupted (running, queued, paused) become paused: the user resumes them. */
  function pauseInterrupted(): FinetuneRun[] {
    const interrupted = q.runs.all().filter((r) => r.state === 'running' || r.state === 'queued' || r.state === 'paused');
    return interrupted.map((r) => (r.state === 'paused' ? toRun(r) : updateRun(r.id, { state: 'paused' })));
  }

  async function deleteRun(id: string): Promise<boolean> {
    const checkpoints = q.checkpoints.all(id);
    const deleted = q.deleteRun.run(id).changes > 0;
    for (const c of checkpoints) await models.delete(c.model_id);
    return deleted;
  }

  /** The measured training speed of the latest run of this method on this model, or null. */
  function measuredSpeed(modelName: string, method: FinetuneMethod): number | null {
    const row = db
      .prepare<[string, string], { tps: number }>(
        `SELECT tokens_per_second AS tps FROM finetune_runs WHERE model_name = ? AND method = ? AND tokens_per_second > 0
         ORDER BY updated_at DESC LIMIT 1`,
      )
      .get(modelName, method);
    return row?.tps ?? null;
  }

  // ---- checkpoints ----

  async function saveCheckpoint(runId: string, checkpoint: TrainingCheckpoint): Promise<void> {
    requireRun(runId);
    const { meta } = checkpoint;
    const model = await models.put({
      name: `run ${runId} step ${meta.step}`,
      kind: 'checkpoint',
      source: `run ${runId}`,
      config: { runId, step: meta.step, reason: meta.reason },
      files: [
        { name: STATE_FILE, bytes: Buffer.from(JSON.stringify(meta)) },
        { name: TENSORS_FILE, bytes: encodeTensors(checkpoint.tensors) },
      ],
    });
    q.insertCheckpoint.run(runId, meta.step, meta.reason, model.id, now());
    for (const old of q.checkpoints.all(runId).slice(KEEP_CHECKPOINTS)) {
      q.deleteCheckpoint.run(old.id);
      await models.delete(old.model_id);
    }
  }

  /** The newest checkpoint that reads back intact (a damaged one is skipped for the one before it). */
  function latestCheckpoint(runId: string): TrainingCheckpoint | null {
    let firstError: unknown = null;
    for (const c of q.checkpoints.all(runId)) {
      try {
        const meta = JSON.parse(models.readFile(c.model_id, STATE_FILE).toString('utf8')) as CheckpointMeta;
        const tensors = decodeTensors(models.readFile(c.model_id, TENSORS_FILE), `checkpoint of run ${runId} at step ${c.step}`);
        return { meta, tensors };
      } catch (error) {
        firstError ??= error;
      }
    }
    if (firstError !== null) throw firstError;
    return null;
  }

  async function deleteCheckpoints(runId: string): Promise<void> {
    for (const c of q.checkpoints.all(runId)) {
      q.deleteCheckpoint.run(c.id);
      await models.delete(c.model_id);
    }
  }

  // ---- styles ----

  /** Makes a finished run a style, from the trained tensors (`param/…`) of its final checkpoint. */
  async function createStyle(runId: string, checkpoint: TrainingCheckpoint): Promise<Style> {
    const run = requireRun(runId);
    const weights = new Map<string, CheckpointTensor>();
    for (const [key, t] of checkpoint.tensors) if (key.startsWith('param/')) weights.set(key.slice('param/'.length), t);
    if (weights.size === 0) throw new StoreError('INVALID_INPUT', `The checkpoint of run ${runId} holds no trained tensors.`);
    const lora = checkpoint.meta.options.lora;
    const model = await models.put({
      name: run.name,
      kind: 'checkpoint',
      source: `style of run ${runId}`,
      config: { runId, method: run.method, lora },
      files: [{ name: TENSORS_FILE, bytes: encodeTensors(weights) }],
    });
    const id = randomUUID();
    q.insertStyle.run(id, runId, run.name, run.modelName, run.method, lora === null ? null : JSON.stringify(lora), model.id, run.perplexityBefore, run.perplexityAfter, now());
    return toStyle(q.style.get(id)!);
  }

  function requireStyle(id: string): StyleRow {
    const row = q.style.get(id);
    if (!row) throw new StoreError('NOT_FOUND', `No style with id ${JSON.stringify(id)}.`);
    return row;
  }

  function styleWeights(id: string): StyleWeights {
    const row = requireStyle(id);
    return {
      method: row.method,
      lora: row.lora === null ? null : JSON.parse(row.lora),
      tensors: decodeTensors(models.readFile(row.model_id, TENSORS_FILE), `style ${row.name}`),
    };
  }

  function renameStyle(id: string, name: string): Style {
    requireStyle(id);
    if (typeof name !== 'string' || name.trim() === '') throw invalidInput('A style name must be a non-empty string', name);
    q.renameStyle.run(name.trim(), id);
    return toStyle(q.style.get(id)!);
  }

  async function deleteStyle(id: string): Promise<boolean> {
    const row = q.style.get(id);
    if (!row) return false;
    q.deleteStyle.run(id);
    await models.delete(row.model_id);
    return true;
  }

  /** Marks one style (or none) as the one suggestions use. */
  function setActiveStyle(id: string | null): Style[] {
    if (id !== null) requireStyle(id);
    db.transaction(() => {
      q.deactivateAll.run();
      if (id !== null) q.activate.run(id);
    })();
    return listStyles();
  }

  const listStyles = (): Style[] => q.styles.all().map(toStyle);

  return {
    createRun,
    getRun,
    listRuns: (): FinetuneRun[] => q.runs.all().map(toRun),
    updateRun,
    runTexts: (runId: string): TrainingText[] => q.texts.all(runId),
    pauseInterrupted,
    deleteRun,
    measuredSpeed,
    saveCheckpoint,
    latestCheckpoint,
    deleteCheckpoints,
    createStyle,
    listStyles,
    getStyle: (id: string): Style | null => {
      const row = q.style.get(id);
      return row ? toStyle(row) : null;
    },
    styleWeights,
    renameStyle,
    deleteStyle,
    setActiveStyle,
  };
}

export type FinetuneStore = ReturnType<typeof createFinetuneStore>;

/** Merges curve points by step (a step's training loss and held-out loss arrive in separate events). */
export function mergePoints(points: readonly LossPoint[], added: readonly LossPoint[]): LossPoint[] {
  const byStep = new Map(points.map((p) => [p.step, { ...p }]));
  for (const p of added) byStep.set(p.step, { ...byStep.get(p.step), ...p });
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/**
 * The engine's `CheckpointSink` over the store: a run killed with the app resumes from the last
 * checkpoint in SQLite.
 */
export class StoreCheckpointSink implements CheckpointSink {
  constructor(
    private readonly store: Pick<FinetuneStore, 'saveCheckpoint' | 'latestCheckpoint'>,
    readonly runId: string,
  ) {}

  save(checkpoint: TrainingCheckpoint): Promise<void> {
    return this.store.saveCheckpoint(this.runId, checkpoint);
  }

  async loadLatest(): Promise<TrainingCheckpoint | null> {
    return this.store.latestCheckpoint(this.runId);
  }
}
