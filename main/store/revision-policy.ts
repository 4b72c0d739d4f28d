/**
 * When an autosave should keep the text it is about to overwrite. Autosaves come every few seconds while the
 * user types, so keeping each would bury the history in near-copies; keeping none would make a bad paste or an
 * accidental delete permanent. So: keep the old text when the last kept version is a few minutes old, or when
 * this one save changes a lot at once.
 */
export interface RevisionPolicy {
  /** Keep the old text when the last revision (or the document's creation) is at least this old. */
  minIntervalMs: number;
  /** Keep the old text when one save replaces or removes at least this many characters... */
  bigChangeChars: number;
  /** ...or, for short documents, at least half of the old text, but never fewer than this many characters. */
  minBigChangeChars: number;
}

export const DEFAULT_REVISION_POLICY: Readonly<RevisionPolicy> = Object.freeze({
  minIntervalMs: 5 * 60_000,
  bigChangeChars: 500,
  minBigChangeChars: 50,
});

/**
 * The size of the edit between two texts: what remains once their common start and common end are removed,
 * measured on the longer side. Cheap (one pass from each end) and exact for the single edit an autosave
 * usually carries.
 */
export function changedChars(before: string, after: string): number {
  const shorter = Math.min(before.length, after.length);
  let prefix = 0;
  while (prefix < shorter && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix++;
  let suffix = 0;
  while (
    suffix < shorter - prefix &&
    before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)
  ) {
    suffix++;
  }
  return Math.max(before.length, after.length) - prefix - suffix;
}

export function shouldKeepRevision(
  previousBody: string,
  nextBody: string,
  lastKeptAt: number,
  now: number,
  policy: RevisionPolicy,
): boolean {
  if (previousBody === nextBody || previousBody.length === 0) return false;
  if (now - lastKeptAt >= policy.minIntervalMs) return true;
  const threshold = Math.max(policy.minBigChangeChars, Math.min(policy.bigChangeChars, Math.ceil(previousBody.length / 2)));
  return changedChars(previousBody, nextBody) >= threshold;
}
