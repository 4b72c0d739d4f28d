/** Display logic of the model manager: sizes, progress, and what the panel may offer for each model. */
import type { ModelInfo, ModelProgressEvent } from '../../../main/ipc/contract.js';

/** "6.5 MB", "548 MB", "6.4 GB" (decimal units, as disks and downloads are labelled). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1e3) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1e3;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** "124M", "1.6B", "85k" parameters. */
export function formatParameters(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${Math.round(n / 1e6)}M`;
  if (n >= 1e3) return `${Math.round(n / 1e3)}k`;
  return String(n);
}

export const SOURCE_LABELS: Record<ModelInfo['source'], string> = {
  bundled: 'Comes with Inkling',
  imported: 'Imported',
  downloaded: 'Downloaded',
};

/** Where a model came from, for its row. */
export function sourceText(model: ModelInfo): string {
  return model.origin ? `${SOURCE_LABELS[model.source]} from ${model.origin}` : SOURCE_LABELS[model.source];
}

/** Why a model cannot be deleted, or null when it can. */
export function deleteBlocker(model: ModelInfo): string | null {
  if (model.source === 'bundled') return 'The default model comes with Inkling and cannot be deleted.';
  if (model.active) return 'This is the active model: switch to another one first.';
  return null;
}

/** 0..1, or null when the total is not known yet. */
export function progressFraction(event: Pick<ModelProgressEvent, 'bytes' | 'totalBytes'>): number | null {
  if (event.totalBytes === null || event.totalBytes <= 0) return null;
  return Math.min(1, Math.max(0, event.bytes / event.totalBytes));
}

/** "12.0 MB of 548 MB (2%)" or "12.0 MB" when the total is unknown. */
export function progressText(event: Pick<ModelProgressEvent, 'bytes' | 'totalBytes'>): string {
  const fraction = progressFraction(event);
  if (fraction === null) return formatBytes(event.bytes);
  return `${formatBytes(event.bytes)} of ${formatBytes(event.totalBytes!)} (${Math.floor(fraction * 100)}%)`;
}

/** What to tell the user when a job ended badly; the offline case gets its own plain sentence. */
export function jobErrorText(event: ModelProgressEvent): string | null {
  if (event.state === 'cancelled') return 'Download cancelled. Starting it again continues where it stopped.';
  if (event.state !== 'error' || !event.error) return null;
  if (event.error.code === 'DOWNLOAD_OFFLINE') return 'Cannot reach the Hugging Face hub — this computer seems to be offline. Try again when it is connected.';
  return event.error.message;
}

/** An API error saying the feature does not exist here (browser mode has no native file dialog). */
export function isUnavailable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'NOT_AVAILABLE';
}

/**
 * A folder path from a drop, where the browser gives one: Electron's File has `path`; a file manager drop
 * often carries `text/uri-list` with a file:// URL; browsers otherwise hide paths, so null.
 */
export function droppedPath(data: { getData(type: string): string; files?: ArrayLike<File & { path?: string }> } | null): string | null {
  if (data === null) return null;
  const file = data.files && data.files.length > 0 ? data.files[0] : undefined;
  if (file && typeof file.path === 'string' && file.path !== '') return file.path;
  const uri = data.getData('text/uri-list').split(/\r?\n/).find((line) => line !== '' && !line.startsWith('#'));
  if (uri && uri.startsWith('file://')) {
    try {
      return decodeURIComponent(new URL(uri).pathname);
    } catch {
      return null;
    }
  }
  const text = data.getData('text/plain').trim();
  return text.startsWith('/') || /^[A-Za-z]:\\/.test(text) ? text : null;
}
