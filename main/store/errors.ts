/**
 * Errors the store throws on purpose. `code` is stable so the IPC layer can pass it on as `AppError.code`;
 * `message` is written for the user and names the problem.
 */
export type StoreErrorCode =
  /** No document, revision, model or model file with that id. */
  | 'NOT_FOUND'
  /** The document is in the trash: restore it before changing it. */
  | 'DOCUMENT_IN_TRASH'
  /** An argument has the wrong type or shape. */
  | 'INVALID_INPUT'
  /** A settings patch names an unknown key or a value out of range. */
  | 'INVALID_SETTINGS'
  /** Stored model bytes no longer match the checksum recorded when they were written. */
  | 'CHECKSUM_MISMATCH'
  /** The database was written by a newer Inkling; it is left untouched. */
  | 'SCHEMA_TOO_NEW'
  /** The database file could not be opened for a reason other than corruption (permissions, a directory, ...). */
  | 'CANNOT_OPEN';

export class StoreError extends Error {
  override readonly name = 'StoreError';

  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function invalidInput(what: string, value: unknown): StoreError {
  return new StoreError('INVALID_INPUT', `${what} (got ${describeValue(value)})`);
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return String(value);
}
