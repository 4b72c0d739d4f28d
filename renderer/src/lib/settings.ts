/** Settings edits: merged locally at once (sliders stay live), sent to main in batches. */
import type { DecodingSettings, Settings } from '../../../main/ipc/contract.js';
import type { SuggestionSettings } from './suggestions.js';

export type SettingsPatch = Partial<Omit<Settings, 'decoding'>> & { decoding?: Partial<DecodingSettings> };

/** `later` over `earlier`, field by field (decoding included). */
export function mergePatches(earlier: SettingsPatch, later: SettingsPatch): SettingsPatch {
  const merged: SettingsPatch = { ...earlier, ...later };
  if (earlier.decoding || later.decoding) merged.decoding = { ...earlier.decoding, ...later.decoding };
  return merged;
}

export function applyPatch(settings: Settings, patch: SettingsPatch): Settings {
  return { ...settings, ...patch, decoding: { ...settings.decoding, ...patch.decoding } };
}

/** The suggestion machine's view of the settings; automatic suggestions only while the engine is ready. */
export function suggestionSettings(settings: Settings | null, engineReady: boolean): SuggestionSettings {
  return {
    enabled: (settings?.suggestionsEnabled ?? false) && engineReady,
    delayMs: settings?.suggestionDelayMs ?? 400,
    stopAtSentenceEnd: settings?.stopAtSentenceEnd ?? true,
    numAlternatives: settings?.decoding.numAlternatives ?? 3,
  };
}
