import type { Database } from 'better-sqlite3';
import type { ModelSource } from '../ipc/contract.js';

/** A base model the user imported or downloaded; its files live in `folder` (absolute). */
export interface RegisteredModel {
  id: string;
  name: string;
  source: Exclude<ModelSource, 'bundled'>;
  origin: string | null;
  folder: string;
  shape: string;
  parameters: number;
  sizeBytes: number;
  memoryBytes: number;
  /** sha256 of model.safetensors, hex, checked before the engine loads the folder. */
  sha256: string;
  createdAt: number;
}

export interface ModelRegistry {
  add(model: RegisteredModel): void;
  /** Newest first. */
  list(): RegisteredModel[];
  get(id: string): RegisteredModel | null;
  remove(id: string): boolean;
  /** The model the app starts on: a registry id, 'bundled', or null when none was chosen. */
  activeId(): string | null;
  setActiveId(id: string | null): void;
}

interface Row {
  id: string;
  name: string;
  source: string;
  origin: string | null;
  folder: string;
  shape: string;
  parameters: number;
  size_bytes: number;
  memory_bytes: number;
  sha256: string;
  created_at: number;
}

const fromRow = (row: Row): RegisteredModel => ({
  id: row.id,
  name: row.name,
  source: row.source === 'downloaded' ? 'downloaded' : 'imported',
  origin: row.origin,
  folder: row.folder,
  shape: row.shape,
  parameters: row.parameters,
  sizeBytes: row.size_bytes,
  memoryBytes: row.memory_bytes,
  sha256: row.sha256,
  createdAt: row.created_at,
});

const ACTIVE_KEY = 'activeModel';

export function createModelRegistry(db: Database): ModelRegistry {
  const insert = db.prepare(`INSERT INTO model_registry (id, name, source, origin, folder, shape, parameters, size_bytes, memory_bytes, sha256, created_at)
    VALUES (@id, @name, @source, @origin, @folder, @shape, @parameters, @sizeBytes, @memoryBytes, @sha256, @createdAt)`);
  const all = db.prepare<[], Row>('SELECT * FROM model_registry ORDER BY created_at DESC, id');
  const one = db.prepare<[string], Row>('SELECT * FROM model_registry WHERE id = ?');
  const del = db.prepare<[string]>('DELETE FROM model_registry WHERE id = ?');
  const getState = db.prepare<[string], { value: string }>('SELECT value FROM app_state WHERE key = ?');
  const putState = db.prepare<[string, string]>('INSERT INTO app_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  const delState = db.prepare<[string]>('DELETE FROM app_state WHERE key = ?');
  return {
    add: (model) => void insert.run(model),
    list: () => all.all().map(fromRow),
    get: (id) => {
      const row = one.get(id);
      return row === undefined ? null : fromRow(row);
    },
    remove: (id) => del.run(id).changes > 0,
    activeId: () => getState.get(ACTIVE_KEY)?.value ?? null,
    setActiveId: (id) => void (id === null ? delState.run(ACTIVE_KEY) : putState.run(ACTIVE_KEY, id)),
  };
}
