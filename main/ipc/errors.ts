import type { AppError } from './contract.js';

/**
 * Codes of the IPC layer. The store (`StoreError`: NOT_FOUND, INVALID_SETTINGS, ...) and the engine
 * (ENGINE_CRASHED, ...) have their own, which pass through unchanged; INVALID_INPUT is shared with the store.
 */
export type ApiErrorCode =
  /** An argument has the wrong type, shape or range. */
  | 'INVALID_INPUT'
  /** A string argument is longer than the API accepts. */
  | 'TOO_LARGE'
  | 'UNKNOWN_METHOD'
  /** Electron: the call did not come from the Inkling page. */
  | 'FORBIDDEN'
  /** No model to run (browser mode or desktop started without --model and without a bundled model). */
  | 'NO_MODEL'
  /** Anything thrown without a code. */
  | 'INTERNAL';

/** An error that crosses the process boundary intact: its `code` survives, unlike a plain Error's type. */
export class ApiError extends Error implements AppError {
  override name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode | (string & {}),
    message: string,
  ) {
    super(message);
  }
}

function hasCode(err: unknown): err is { code: string; message: string } {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { code?: unknown }).code === 'string' &&
    typeof (err as { message?: unknown }).message === 'string'
  );
}

/**
 * Anything thrown → plain `{ code, message }` data. Errors that already carry a code (ours, the store's,
 * Node's `ENOENT`-style ones, better-sqlite3's `SQLITE_*`) keep it; everything else is `INTERNAL`.
 */
export function toAppError(err: unknown): AppError {
  if (hasCode(err)) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: 'INTERNAL', message: err.message || err.name };
  return { code: 'INTERNAL', message: String(err) };
}

/** The Error a caller of the API sees: the message is `AppError.message`, the code rides along. */
export function fromAppError(error: AppError): Error & AppError {
  return Object.assign(new Error(error.message), { code: error.code });
}

/** One reply shape for both transports (Electron IPC drops the type and code of thrown errors). */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: AppError };

export async function settle(run: () => unknown): Promise<Outcome> {
  try {
    return { ok: true, value: await run() };
  } catch (err) {
    return { ok: false, error: toAppError(err) };
  }
}
