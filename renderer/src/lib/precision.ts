/** The "Suggestion speed" setting: what each choice costs, and why the engine may not run the one chosen. */
import type { EnginePrecision, EngineStatus } from '../../../main/ipc/contract.js';

export interface PrecisionChoice {
  value: EnginePrecision;
  label: string;
  /** What the choice costs, in words. */
  help: string;
}

export const PRECISION_CHOICES: readonly PrecisionChoice[] = [
  { value: 'exact', label: 'Exact', help: "The model's own float32 weights." },
  {
    value: 'fast',
    label: 'Fast',
    help: 'About 2× faster suggestions with int8 weights; perplexity within ~1% of exact (measured on held-out text).',
  },
];

/**
 * Why suggestions run exact although fast is chosen (the model cannot run fast, e.g. its width is not a
 * multiple of 32), or null. Only once the engine with that choice is ready: while it reloads, the status
 * still describes the engine before the change.
 */
export function precisionNote(chosen: EnginePrecision | undefined, engine: EngineStatus | null): string | null {
  if (chosen !== 'fast' || engine?.state !== 'ready' || engine.precision !== 'exact') return null;
  return engine.precisionNote ? `Running exact: ${engine.precisionNote}` : null;
}
