/**
 * Checkpoints: everything a killed run needs to continue exactly where an uninterrupted one would be —
 * trained tensors, AdamW moments, step, random state, data position (implied by the step), evaluation
 * history — and where they are kept.
 *
 * The engine talks only to `CheckpointSink`; `FileCheckpointSink` keeps them in a folder (the CLI), the app
 * keeps them in SQLite behind the same interface, `MemoryCheckpointSink` serves tests.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SafetensorsReader, writeSafetensors } from '../model/safetensors.js';
import type { ResolvedTrainingOptions, TrainingPlan } from './options.js';

export const CHECKPOINT_FORMAT = 1;

/** One float32 tensor, off the backend. */
export interface CheckpointTensor {
  shape: number[];
  data: Float32Array;
}

export type CheckpointReason = 'periodic' | 'final' | 'cancelled';
export type TrainingStatus = 'completed' | 'early-stopped' | 'cancelled';

export interface HistoryEntry {
  step: number;
  trainLoss?: number;
  heldOutLoss?: number;
  learningRate?: number;
}

/** The JSON part of a checkpoint. */
export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  reason: CheckpointReason;
  createdAt: string;
  /** Optimizer steps done; the next step's data position follows from it and the seed. */
  step: number;
  totalSteps: number;
  /** Where the next step's data starts: 0-based epoch and step in it (follows from `step`; kept for reading). */
  dataPosition: { epoch: number; stepInEpoch: number };
  /** State of the random numbers (dropout) at `step`. */
  rngState: number;
  /** An evaluation is due at `step` that had not run when the checkpoint was written. */
  evaluationPending: boolean;
  options: ResolvedTrainingOptions;
  plan: TrainingPlan;
  dataFingerprint: string;
  modelFingerprint: string;
  initialHeldOutLoss: number | null;
  bestHeldOutLoss: number | null;
  bestStep: number | null;
  lastHeldOutLoss: number | null;
  evaluationsWithoutImprovement: number;
  /** Tokens trained on and time spent training (pauses excluded), summed over every session of the run. */
  tokensSeen: number;
  elapsedMs: number;
  history: HistoryEntry[];
  /** Set when the run is over: resuming it only reports the result. */
  finished: TrainingStatus | null;
}

export interface TrainingCheckpoint {
  meta: CheckpointMeta;
  /** `param/NAME` (trained tensors), `adam_m/NAME`, `adam_v/NAME`, and `best/NAME` when early stopping keeps the best. */
  tensors: Map<string, CheckpointTensor>;
}

export interface CheckpointSink {
  /** Stores a checkpoint; once it resolves, `loadLatest` returns it even after a crash. */
  save(checkpoint: TrainingCheckpoint): Promise<void>;
  /** The last checkpoint saved completely, or null when there is none. */
  loadLatest(): Promise<TrainingCheckpoint | null>;
}

/** Keeps checkpoints in memory (tests, throwaway runs); copies on the way in and out. */
export class MemoryCheckpointSink implements CheckpointSink {
  readonly saved: TrainingCheckpoint[] = [];

  async save(checkpoint: TrainingCheckpoint): Promise<void> {
    this.saved.push(copyCheckpoint(checkpoint));
  }

  async loadLatest(): Promise<TrainingCheckpoint | null> {
    const last = this.saved[this.saved.length - 1];
    return last ? copyCheckpoint(last) : null;
  }
}

function copyCheckpoint(c: TrainingCheckpoint): TrainingCheckpoint {
  const tensors = new Map([...c.tensors].map(([k, t]) => [k, { shape: [...t.shape], data: t.data.slice() }]));
  return { meta: structuredClone(c.meta), tensors };
}

const STATE_FILE = 'state.json';
const TENSORS_FILE = 'tensors.safetensors';

/**
 * Checkpoints as folders `step-000120/` (state.json + tensors.safetensors) under `dir`. A folder is written
 * under a temporary name and renamed when complete, so a crash mid-write leaves the previous one intact.
 * Only the newest `keep` are kept.
 */
export class FileCheckpointSink implements CheckpointSink {
  constructor(
    readonly dir: string,
    private readonly keep = 2,
  ) {}

  async save(checkpoint: TrainingCheckpoint): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const name = `step-${String(checkpoint.meta.step).padStart(6, '0')}`;
    const partial = path.join(this.dir, `.${name}.partial`);
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial);
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const [key, t] of checkpoint.tensors) tensors[key] = { dtype: 'F32', shape: t.shape, data: t.data };
    await writeSafetensors(path.join(partial, TENSORS_FILE), tensors);
    await writeFile(path.join(partial, STATE_FILE), JSON.stringify(checkpoint.meta, null, 1));
    const final = path.join(this.dir, name);
    // The same step can be saved twice (a periodic checkpoint, then the final one after a cancel).
    await rm(final, { recursive: true, force: true });
    await rename(partial, final);
    for (const old of (await this.folders()).slice(this.keep)) {
      await rm(path.join(this.dir, old.name), { recursive: true, force: true });
    }
  }

  async loadLatest(): Promise<TrainingCheckpoint | null> {
    for (const { name } of await this.folders()) {
      const folder = path.join(this.dir, name);
      let meta: CheckpointMeta;
      try {
        meta = JSON.parse(await readFile(path.join(folder, STATE_FILE), 'utf8')) as CheckpointMeta;
      } catch {
        continue; // not a complete checkpoint (cannot happen through save(), but a user may have copied files)
      }
      if (meta.format !== CHECKPOINT_FORMAT) {
        throw new Error(`${folder}: checkpoint format ${String(meta.format)} is not supported (expected ${CHECKPOINT_FORMAT})`);
      }
      const reader = SafetensorsReader.open(path.join(folder, TENSORS_FILE));
      try {
        const tensors = new Map<string, CheckpointTensor>();
        for (const [key, info] of reader.tensors) tensors.set(key, { shape: info.shape, data: reader.readFloat32(key) });
        return { meta, tensors };
      } finally {
        reader.close();
      }
    }
    return null;
  }

  /** Checkpoint folders, newest first. */
  private async folders(): Promise<{ name: string; step: number }[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return entries
      .map((name) => ({ name, match: /^step-(\d+)$/.exec(name) }))
      .filter((e): e is { name: string; match: RegExpExecArray } => e.match !== null)
      .map((e) => ({ name: e.name, step: Number(e.match[1]) }))
      .sort((a, b) => b.step - a.step);
  }
}
