/**
 * The Fine-tune panel's logic, kept out of the component so it is testable: the settings form, picked files,
 * the plan's wording (honest when the time is unknown), progress and ETA, and the loss chart's geometry.
 */
import type { FinetunePlan, FinetuneRun, FinetuneSettings, LossPoint } from '../../../main/ipc/contract.js';

/** Picked files larger than this are refused before they are read (the server refuses above 10 M characters too). */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;
export const TEXT_EXTENSIONS = ['.txt', '.md', '.markdown'];

export interface SettingsForm {
  method: 'lora' | 'full';
  /** Text fields: blank means the engine's default. */
  epochs: string;
  learningRate: string;
  maxSteps: string;
  loraRank: string;
}

export const DEFAULT_FORM: SettingsForm = { method: 'lora', epochs: '', learningRate: '', maxSteps: '', loraRank: '' };

/** The settings the form asks for, or the first problem with them. */
export function settingsFromForm(form: SettingsForm): { settings: FinetuneSettings; error: null } | { settings: null; error: string } {
  const settings: FinetuneSettings = { method: form.method };
  const integer = (label: string, text: string, key: 'epochs' | 'maxSteps' | 'loraRank'): string | null => {
    if (text.trim() === '') return null;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) return `${label} must be a whole number of at least 1`;
    settings[key] = value;
    return null;
  };
  const error =
    integer('Epochs', form.epochs, 'epochs') ??
    integer('Steps', form.maxSteps, 'maxSteps') ??
    (form.method === 'lora' ? integer('LoRA rank', form.loraRank, 'loraRank') : null);
  if (error) return { settings: null, error };
  if (form.learningRate.trim() !== '') {
    const lr = Number(form.learningRate);
    if (!(lr > 0 && lr <= 1)) return { settings: null, error: 'Learning rate must be a number above 0 and at most 1' };
    settings.learningRate = lr;
  }
  return { settings, error: null };
}

export interface PickedFile {
  name: string;
  size: number;
  text(): Promise<string>;
}

/** Reads picked files as texts; what cannot be used is named in `errors` (and not read at all). */
export async function readPickedFiles(files: readonly PickedFile[]): Promise<{ files: { name: string; text: string }[]; errors: string[] }> {
  const out: { name: string; text: string }[] = [];
  const errors: string[] = [];
  for (const file of files) {
    const lower = file.name.toLowerCase();
    if (!TEXT_EXTENSIONS.some((ext) => lower.endsWith(ext))) {
      errors.push(`“${file.name}” is not a .txt or .md file`);
      continue;
    }
    if (file.size > MAX_FILE_BYTES) {
      errors.push(`“${file.name}” is too large (${(file.size / 1024 / 1024).toFixed(1)} MB; at most ${MAX_FILE_BYTES / 1024 / 1024} MB)`);
      continue;
    }
    const text = await file.text();
    if (text.includes('\u0000')) {
      errors.push(`“${file.name}” is not a text file`);
      continue;
    }
    out.push({ name: file.name, text });
  }
  return { files: out, errors };
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

const count = (n: number) => n.toLocaleString('en-US');

/** What the plan means, in words: tokens, steps, and the time when a run has measured this machine's speed. */
export function planSummary(plan: FinetunePlan): { tokens: string; steps: string; time: string } {
  return {
    tokens: `${count(plan.trainTokens)} tokens to learn from (${count(plan.heldOutTokens)} held out to measure progress)`,
    steps: `${count(plan.totalSteps)} training steps`,
    time:
      plan.estimatedMs === null
        ? 'Time: not known yet — the first run measures how fast this computer trains.'
        : `About ${formatDuration(plan.estimatedMs)} (at ${Math.round(plan.tokensPerSecond!)} tokens/s, measured before)`,
  };
}

/** The progress bar: a fraction, and a label with the ETA when it is known. */
export function progressOf(run: FinetuneRun): { fraction: number; label: string } {
  const fraction = run.totalSteps > 0 ? Math.min(1, run.step / run.totalSteps) : 0;
  const steps = `step ${run.step} of ${run.totalSteps}`;
  switch (run.state) {
    case 'done':
      return { fraction: 1, label: `Done — ${steps}` };
    case 'running':
      return { fraction, label: run.etaMs === null ? `Training — ${steps}` : `Training — ${steps}, about ${formatDuration(run.etaMs)} left` };
    case 'paused':
      return { fraction, label: `Paused — ${steps}` };
    case 'queued':
      return { fraction, label: 'Starting…' };
    case 'cancelled':
      return { fraction, label: `Cancelled — ${steps}` };
    case 'failed':
      return { fraction, label: `Failed — ${run.error?.message ?? 'unknown error'}` };
  }
}

export function perplexityText(value: number | null): string {
  return value === null ? '—' : value >= 1000 ? value.toExponential(2) : value.toFixed(2);
}

/** Inserts or replaces a run (by id), newest first. */
export function upsertRun(runs: readonly FinetuneRun[], run: FinetuneRun): FinetuneRun[] {
  const rest = runs.filter((r) => r.id !== run.id);
  return [run, ...rest].sort((a, b) => b.createdAt - a.createdAt);
}

export interface ChartGeometry {
  /** SVG path data of the training and held-out curves ('' when a curve has no point). */
  train: string;
  heldOut: string;
  yMin: number;
  yMax: number;
  xMax: number;
}

/** Both loss curves scaled into a width × height box (y grows downward, as in SVG). */
export function lossChart(points: readonly LossPoint[], width: number, height: number, pad = 4): ChartGeometry {
  const values = points.flatMap((p) => [p.trainLoss, p.heldOutLoss]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const xMax = Math.max(1, ...points.map((p) => p.step));
  if (values.length === 0) return { train: '', heldOut: '', yMin: 0, yMax: 0, xMax };
  let yMin = Math.min(...values);
  let yMax = Math.max(...values);
  if (yMax - yMin < 1e-9) {
    yMin -= 0.5;
    yMax += 0.5;
  }
  const x = (step: number) => pad + (step / xMax) * (width - 2 * pad);
  const y = (v: number) => pad + ((yMax - v) / (yMax - yMin)) * (height - 2 * pad);
  const path = (key: 'trainLoss' | 'heldOutLoss') =>
    points
      .filter((p) => typeof p[key] === 'number')
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${y(p[key]!).toFixed(1)}`)
      .join(' ');
  return { train: path('trainLoss'), heldOut: path('heldOutLoss'), yMin, yMax, xMax };
}
