import type { Database } from 'better-sqlite3';

/**
 * The schema, as an append-only list. A database records the last migration applied in `PRAGMA user_version`
 * (part of the file header, so it changes in the same transaction as the tables). Never edit a migration that
 * has shipped: add a new one.
 *
 * Large columns (`body`, `data`) come last in their tables: SQLite stores a row's columns in order and spills
 * what does not fit the page into a linked list of overflow pages, so a column placed after a 1 MB body could
 * only be read by walking that list.
 */
export interface Migration {
  version: number;
  description: string;
  up(db: Database): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'documents, revisions, settings',
    up(db) {
      db.exec(`
        CREATE TABLE documents (
          id TEXT PRIMARY KEY NOT NULL,
          title TEXT NOT NULL,
          snippet TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          deleted_at INTEGER,
          body TEXT NOT NULL
        );
        CREATE INDEX documents_by_updated ON documents (updated_at DESC);

        CREATE TABLE revisions (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
          title TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          length INTEGER NOT NULL,
          body TEXT NOT NULL
        );
        CREATE INDEX revisions_by_document ON revisions (document_id, id);

        CREATE TABLE settings (
          key TEXT PRIMARY KEY NOT NULL,
          value TEXT NOT NULL
        );
      `);
    },
  },
  {
    version: 2,
    description: 'models and checkpoints stored as chunked, checksummed files',
    up(db) {
      db.exec(`
        CREATE TABLE models (
          id TEXT PRIMARY KEY NOT NULL,
          name TEXT NOT NULL,
          kind TEXT NOT NULL,
          source TEXT NOT NULL,
          config TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          complete INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE model_files (
          id INTEGER PRIMARY KEY,
          model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
          name TEXT NOT NULL,
          size INTEGER NOT NULL DEFAULT 0,
          chunk_count INTEGER NOT NULL DEFAULT 0,
          sha256 TEXT,
          UNIQUE (model_id, name)
        );

        CREATE TABLE model_file_chunks (
          file_id INTEGER NOT NULL REFERENCES model_files (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          data BLOB NOT NULL,
          PRIMARY KEY (file_id, seq)
        );
      `);
    },
  },
  {
    version: 3,
    description: 'fine-tuning runs, their checkpoints, and styles',
    up(db) {
      // Checkpoint and style weights are rows of `models` (kind 'checkpoint'): chunked, checksummed files.
      // A run keeps the texts it trains on, so that resuming it after a restart sees the same data even if
      // the documents changed meanwhile.
      db.exec(`
        CREATE TABLE finetune_runs (
          id TEXT PRIMARY KEY NOT NULL,
          name TEXT NOT NULL,
          model_name TEXT NOT NULL,
          method TEXT NOT NULL,
          state TEXT NOT NULL,
          settings TEXT NOT NULL,
          step INTEGER NOT NULL DEFAULT 0,
          total_steps INTEGER NOT NULL DEFAULT 0,
          perplexity_before REAL,
          perplexity_after REAL,
          tokens_per_second REAL,
          error TEXT,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          finished_at INTEGER,
          points TEXT NOT NULL DEFAULT '[]'
        );

        CREATE TABLE finetune_texts (
          run_id TEXT NOT NULL REFERENCES finetune_runs (id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          name TEXT NOT NULL,
          text TEXT NOT NULL,
          PRIMARY KEY (run_id, seq)
        );

        CREATE TABLE finetune_checkpoints (
          id INTEGER PRIMARY KEY,
          run_id TEXT NOT NULL REFERENCES finetune_runs (id) ON DELETE CASCADE,
          step INTEGER NOT NULL,
          reason TEXT NOT NULL,
          model_id TEXT NOT NULL,
          created_at INTEGER NOT NULL
        );
        CREATE INDEX finetune_checkpoints_by_run ON finetune_checkpoints (run_id, id);

        CREATE TABLE styles (
          id TEXT PRIMARY KEY NOT NULL,
          run_id TEXT REFERENCES finetune_runs (id) ON DELETE SET NULL,
          name TEXT NOT NULL,
          model_name TEXT NOT NULL,
          method TEXT NOT NULL,
          lora TEXT,
          model_id TEXT NOT NULL,
          active INTEGER NOT NULL DEFAULT 0,
          perplexity_before REAL,
          perplexity_after REAL,
          created_at INTEGER NOT NULL
        );
      `);
    },
  },
  {
    version: 4,
    description: 'prompt templates (rewrite, translate), built-in ones seeded when the store opens',
    up(db) {
      // Built-in rows are (re)seeded by the template store from the app's defaults, so that a later
      // version's better default reaches every built-in template the user never changed.
      db.exec(`
        CREATE TABLE templates (
          id TEXT PRIMARY KEY NOT NULL,
          name TEXT NOT NULL,
          kind TEXT NOT NULL,
          stop TEXT NOT NULL,
          note TEXT,
          builtin INTEGER NOT NULL DEFAULT 0,
          modified INTEGER NOT NULL DEFAULT 0,
          updated_at INTEGER NOT NULL,
          prompt TEXT NOT NULL
        );
      `);
    },
  },
  {
    version: 5,
    description: 'model registry (base models kept as folders under <dataDir>/models)',
    up(db) {
      // The weights stay in their folder (the engine loads folders and memory-maps nothing from SQLite);
      // the row records where they came from and the weights' sha256, checked before the model is loaded.
      db.exec(`
        CREATE TABLE model_registry (
          id TEXT PRIMARY KEY NOT NULL,
          name TEXT NOT NULL,
          source TEXT NOT NULL,
          origin TEXT,
          folder TEXT NOT NULL,
          shape TEXT NOT NULL,
          parameters INTEGER NOT NULL,
          size_bytes INTEGER NOT NULL,
          memory_bytes INTEGER NOT NULL,
          sha256 TEXT NOT NULL,
          created_at INTEGER NOT NULL
        );
        CREATE TABLE app_state (
          key TEXT PRIMARY KEY NOT NULL,
          value TEXT NOT NULL
        );
      `);
    },
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Applies every migration above the database's version, up to `target`, each in its own transaction: a failing
 * migration leaves the database at the version before it.
 */
export function migrate(db: Database, target: number = LATEST_SCHEMA_VERSION, migrations: readonly Migration[] = MIGRATIONS): void {
  const current = schemaVersion(db);
  for (const migration of migrations) {
    if (migration.version <= current || migration.version > target) continue;
    db.transaction(() => {
      migration.up(db);
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
}
