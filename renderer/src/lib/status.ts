/** Words for the status bar: what the engine and autosave are doing, in plain language. */
import type { EngineStatus } from '../../../main/ipc/contract.js';
import type { SaveStatus } from './autosave.js';
import { dateTime } from './format.js';

export type Tone = 'ok' | 'busy' | 'error' | 'idle';

export interface StatusText {
  label: string;
  tone: Tone;
  /** Longer explanation for a tooltip. */
  detail: string;
}

export function engineText(status: EngineStatus | null): StatusText {
  if (!status) return { label: 'Connecting…', tone: 'busy', detail: 'Waiting for the engine status' };
  switch (status.state) {
    case 'starting':
      return { label: 'Starting engine…', tone: 'busy', detail: 'The suggestion engine is starting' };
    case 'loading':
      return { label: 'Loading model…', tone: 'busy', detail: `Loading ${status.modelName || 'the model'}` };
    case 'ready':
      return { label: 'Ready', tone: 'ok', detail: `${status.modelName || 'Model'} is ready for suggestions` };
    case 'restarting':
      return {
        label: 'Restarting engine…',
        tone: 'busy',
        detail: status.error ? `Restarting after: ${status.error.message}` : 'The suggestion engine is restarting',
      };
    case 'error':
      return {
        label: status.error ? `Engine error: ${status.error.message}` : 'Engine error',
        tone: 'error',
        detail: status.error ? `${status.error.message} (${status.error.code})` : 'The suggestion engine stopped',
      };
  }
}

/**
 * The compute backend, its threads and its precision, e.g. "wasm · 2 threads · fast", and "· AVX2" when prompts
 * run on the native kernels; the tooltip says why this backend and, when the engine runs on one thread although
 * two were asked for, or exact although fast was asked for, or prompts without the native kernels, why.
 */
export function backendText(status: EngineStatus | null): { label: string; detail: string } {
  if (!status?.backend) return { label: '—', detail: 'Compute backend of the engine' };
  const threads = status.threads === undefined ? '' : ` · ${status.threads} ${status.threads === 1 ? 'thread' : 'threads'}`;
  const precision = status.precision === undefined ? '' : ` · ${status.precision}`;
  const native = status.nativeKernels ? ' · AVX2' : '';
  const notes = [status.backendReason || `Compute backend: ${status.backend}`];
  if (status.threadsNote) notes.push(`one thread: ${status.threadsNote}`);
  if (status.precisionNote) notes.push(`exact, not fast: ${status.precisionNote}`);
  if (status.nativeKernels) notes.push('prompts on native AVX2 kernels');
  else if (status.nativeKernelsNote) notes.push(`prompts on WebAssembly kernels: ${status.nativeKernelsNote}`);
  return { label: status.backend + threads + precision + native, detail: notes.join('; ') };
}

export function saveText(status: SaveStatus): StatusText {
  switch (status.state) {
    case 'saved':
      return {
        label: 'Saved',
        tone: 'ok',
        detail: status.savedAt === null ? 'Everything is saved' : `Saved at ${dateTime(status.savedAt)}`,
      };
    case 'unsaved':
      return { label: 'Edited', tone: 'idle', detail: 'Saves a moment after you stop typing' };
    case 'saving':
      return { label: 'Saving…', tone: 'busy', detail: 'Saving your changes' };
    case 'error':
      return { label: 'Not saved — retrying', tone: 'error', detail: `Save failed: ${status.error ?? 'unknown error'}` };
  }
}
