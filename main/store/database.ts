import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import { StoreError } from './errors.js';
import { LATEST_SCHEMA_VERSION, migrate, schemaVersion } from './migrations.js';

export const DB_FILE_NAME = 'inkling.db';

/** Files SQLite keeps next to the database; they belong to it and move with it. */
const COMPANION_SUFFIXES = ['-wal', '-shm', '-journal'] as const;

/** Set when the database file could not be used and was moved aside for a fresh one. */
export interface RecoveredDatabase {
  /** Where the unusable file now is (its -wal/-shm, if any, sit next to it with the same suffixes). */
  movedTo: string;
  /** Why it could not be used, for the user. */
  reason: string;
}

export interface OpenDatabaseOptions {
  /** How long a write waits for another connection's lock before failing with SQLITE_BUSY. */
  busyTimeoutMs: number;
  /** Time for the `.corrupt-<timestamp>` name. */
  now: () => number;
}

export interface OpenedDatabase {
  db: Database;
  path: string;
  recovered: RecoveredDatabase | null;
}

/**
 * Opens `<dataDir>/inkling.db`, moving an unusable file aside first, and brings the schema up to date.
 *
 * Durability: WAL with `synchronous = FULL`. WAL alone never corrupts the file on a crash or power loss; FULL
 * also syncs the WAL on every commit, so a save that returned survives a power cut, not just a crashed app.
 * Inkling's writes are few (debounced autosaves, rare model imports), so the extra fsync per commit costs
 * nothing the user can notice, and the user's words are the one thing the app must not lose.
 */
export function openDatabase(dataDir: string, options: OpenDatabaseOptions): OpenedDatabase {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, DB_FILE_NAME);

  let recovered: RecoveredDatabase | null = null;
  const problem = inspect(path, options);
  if (problem !== null) {
    const movedTo = moveAside(path, options.now());
    recovered = { movedTo, reason: `${problem} It was moved to ${movedTo} and a new, empty database was made.` };
  }

  let db: Database;
  try {
    db = new Sqlite(path, { timeout: options.busyTimeoutMs });
  } catch (error) {
    throw cannotOpen(path, error);
  }
  try {
    configure(db);
    migrate(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return { db, path, recovered };
}

/**
 * Decides whether an existing file can be used: an SQLite database whose structure passes `quick_check`.
 * Returns what is wrong with it, or null. A newer schema is refused (thrown) rather than reported, because a
 * newer Inkling made it and can still open it.
 *
 * The connection is read-only on purpose: closing a read-write connection checkpoints the WAL into the main
 * file and deletes it, which would change the very file we are about to move aside.
 */
function inspect(path: string, options: OpenDatabaseOptions): string | null {
  if (!existsSync(path)) return null;
  let db: Database;
  try {
    db = new Sqlite(path, { readonly: true, fileMustExist: true, timeout: options.busyTimeoutMs });
  } catch (error) {
    if (isCorruption(error)) return describeCorruption(path, error);
    throw cannotOpen(path, error);
  }

  try {
    const version = schemaVersion(db);
    if (version > LATEST_SCHEMA_VERSION) {
      throw new StoreError(
        'SCHEMA_TOO_NEW',
        `${path} was written by a newer version of Inkling (schema version ${version}; this version knows up to ` +
          `${LATEST_SCHEMA_VERSION}). Update Inkling to open it. The file was left untouched.`,
      );
    }
    const findings = (db.pragma('quick_check(3)') as Array<{ quick_check: string }>).map((row) => row.quick_check);
    if (findings.length === 1 && findings[0] === 'ok') return null;
    const problems = findings.flatMap((text) => text.split('\n')).filter((line) => line && !line.startsWith('***'));
    return `${path} is damaged (SQLite's quick_check found: ${problems.slice(0, 3).join('; ')}).`;
  } catch (error) {
    if (error instanceof StoreError) throw error;
    if (isCorruption(error)) return describeCorruption(path, error);
    throw cannotOpen(path, error);
  } finally {
    db.close();
  }
}

function configure(db: Database): void {
  const isNew = schemaVersion(db) === 0 && db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() === 0;
  // Incremental vacuum must be chosen before the first table exists; it lets a deleted model give its
  // space back to the disk (see models.delete) instead of leaving the file at its largest size forever.
  if (isNew) db.pragma('auto_vacuum = INCREMENTAL');
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') throw new StoreError('CANNOT_OPEN', `${db.name} could not switch to WAL mode (it stayed in "${mode}").`);
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  // A big model import grows the WAL; once checkpointed, keep at most this much of it on disk.
  db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
}

function isCorruption(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'));
}

function describeCorruption(path: string, error: unknown): string {
  const code = (error as { code: string }).code;
  return code === 'SQLITE_NOTADB'
    ? `${path} is not an SQLite database.`
    : `${path} is damaged (SQLite: ${(error as Error).message}).`;
}

function cannotOpen(path: string, error: unknown): StoreError {
  return new StoreError('CANNOT_OPEN', `Could not open the database ${path}: ${(error as Error).message}`, { cause: error });
}

/** Renames the database and its companion files to `<name>.corrupt-<timestamp>`; returns the new name. */
function moveAside(path: string, now: number): string {
  const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  let target = `${path}.corrupt-${stamp}`;
  for (let n = 1; existsSync(target); n++) target = `${path}.corrupt-${stamp}-${n}`;
  renameSync(path, target);
  for (const suffix of COMPANION_SUFFIXES) {
    if (existsSync(path + suffix)) renameSync(path + suffix, target + suffix);
  }
  return target;
}
