import { createHash, randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Database } from 'better-sqlite3';
import { StoreError, invalidInput } from './errors.js';

/**
 * Model files (weights, config, tokenizer) live in the database as rows of at most CHUNK_BYTES, because SQLite
 * caps one value at 1 GB and handles many moderate rows better than one huge one.
 *
 * Checksums are per file, not per chunk: files are always consumed whole (a safetensors header points
 * anywhere in the file), and a whole-file SHA-256 is the same identity a model hub publishes, so it can be
 * compared with the source. Size and chunk sequence are checked too, so a missing chunk names itself.
 *
 * A model is written chunk by chunk, each chunk its own small transaction, and becomes visible only when a
 * final transaction sets `complete = 1`. That keeps the WAL small during a multi-gigabyte import, lets the
 * event loop run between chunks, and a crash mid-import leaves only an invisible half-model that the next
 * `openStore` deletes (which assumes one process imports at a time).
 */
export const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Pages returned to the disk per step after a delete. One `incremental_vacuum` over hundreds of megabytes
 * took seconds here (and far longer per page than small steps); 2048 pages (8 MiB) take tens of milliseconds,
 * and the event loop runs between steps.
 */
const RECLAIM_PAGES_PER_STEP = 2048;

export const MODEL_KINDS = ['base', 'checkpoint'] as const;
/** `base`: a pretrained model as imported; `checkpoint`: weights saved by a fine-tuning run. */
export type ModelKind = (typeof MODEL_KINDS)[number];

export type ModelFileInput =
  | { name: string; bytes: Uint8Array }
  /** Any async iterable of bytes, e.g. `fs.createReadStream(path)`. */
  | { name: string; stream: AsyncIterable<Uint8Array> };

export interface ModelInput {
  name: string;
  kind: ModelKind;
  /** Where it came from, for the user: e.g. "bundled", "imported from /path", "run <id>". */
  source: string;
  /** The model's configuration (e.g. GPT-2's config.json), stored as JSON. */
  config: Record<string, unknown>;
  files: ModelFileInput[];
}

export interface ModelFileInfo {
  name: string;
  size: number;
  /** Hex SHA-256 of the whole file. */
  sha256: string;
}

export interface ModelSummary {
  id: string;
  name: string;
  kind: ModelKind;
  source: string;
  config: Record<string, unknown>;
  createdAt: number;
  /** Bytes in all files together. */
  size: number;
  files: ModelFileInfo[];
}

interface ModelRow {
  id: string;
  name: string;
  kind: ModelKind;
  source: string;
  config: string;
  created_at: number;
}
interface FileRow {
  id: number;
  model_id: string;
  name: string;
  size: number;
  chunk_count: number;
  sha256: string;
}

function checkInput(input: ModelInput): string {
  if (typeof input !== 'object' || input === null) throw invalidInput('A model must be an object', input);
  const { name, kind, source, config, files } = input;
  if (typeof name !== 'string' || name.trim() === '') throw invalidInput('A model name must be a non-empty string', name);
  if (!MODEL_KINDS.includes(kind)) throw invalidInput(`A model kind must be one of ${MODEL_KINDS.join(', ')}`, kind);
  if (typeof source !== 'string') throw invalidInput('A model source must be a string', source);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw invalidInput('A model config must be an object', config);
  }
  if (!Array.isArray(files) || files.length === 0) throw invalidInput('A model needs at least one file', files);
  const names = new Set<string>();
  for (const file of files) {
    if (typeof file?.name !== 'string' || file.name === '') throw invalidInput('A model file name must be a non-empty string', file?.name);
    if (names.has(file.name)) throw invalidInput('Model file names must be unique', file.name);
    names.add(file.name);
    const hasBytes = 'bytes' in file && file.bytes instanceof Uint8Array;
    const hasStream = 'stream' in file && typeof file.stream?.[Symbol.asyncIterator] === 'function';
    if (hasBytes === hasStream) throw invalidInput(`Model file "${file.name}" needs either bytes or a stream`, file);
  }
  try {
    return JSON.stringify(config);
  } catch (error) {
    throw new StoreError('INVALID_INPUT', `A model config must be plain JSON: ${(error as Error).message}`);
  }
}

async function* piecesOf(file: ModelFileInput): AsyncIterable<Uint8Array> {
  if ('bytes' in file) {
    yield file.bytes;
    return;
  }
  for await (const piece of file.stream) {
    if (!(piece instanceof Uint8Array)) throw invalidInput(`The stream of model file "${file.name}" must yield bytes`, piece);
    yield piece;
  }
}

export function createModelStore(db: Database, now: () => number) {
  const q = {
    insertModel: db.prepare<[string, string, string, string, string, number]>(
      'INSERT INTO models (id, name, kind, source, config, created_at, complete) VALUES (?, ?, ?, ?, ?, ?, 0)',
    ),
    markComplete: db.prepare<[string]>('UPDATE models SET complete = 1 WHERE id = ?'),
    insertFile: db.prepare<[string, string]>('INSERT INTO model_files (model_id, name) VALUES (?, ?)'),
    finishFile: db.prepare<[number, number, string, number | bigint]>(
      'UPDATE model_files SET size = ?, chunk_count = ?, sha256 = ? WHERE id = ?',
    ),
    insertChunk: db.prepare<[number | bigint, number, Uint8Array]>(
      'INSERT INTO model_file_chunks (file_id, seq, data) VALUES (?, ?, ?)',
    ),
    models: db.prepare<[], ModelRow>(
      'SELECT id, name, kind, source, config, created_at FROM models WHERE complete = 1 ORDER BY created_at DESC, rowid DESC',
    ),
    model: db.prepare<[string], ModelRow>(
      'SELECT id, name, kind, source, config, created_at FROM models WHERE id = ? AND complete = 1',
    ),
    files: db.prepare<[], FileRow>(
      `SELECT f.id, f.model_id, f.name, f.size, f.chunk_count, f.sha256
       FROM model_files f JOIN models m ON m.id = f.model_id WHERE m.complete = 1 ORDER BY f.id`,
    ),
    filesOf: db.prepare<[string], FileRow>(
      'SELECT id, model_id, name, size, chunk_count, sha256 FROM model_files WHERE model_id = ? ORDER BY id',
    ),
    file: db.prepare<[string, string], FileRow>(
      `SELECT f.id, f.model_id, f.name, f.size, f.chunk_count, f.sha256
       FROM model_files f JOIN models m ON m.id = f.model_id WHERE m.id = ? AND m.complete = 1 AND f.name = ?`,
    ),
    chunks: db.prepare<[number], { seq: number; data: Buffer }>(
      'SELECT seq, data FROM model_file_chunks WHERE file_id = ? ORDER BY seq',
    ),
    deleteModel: db.prepare<[string]>('DELETE FROM models WHERE id = ?'),
    deleteIncomplete: db.prepare<[]>('DELETE FROM models WHERE complete = 0'),
  };

  const toSummary = (row: ModelRow, files: FileRow[]): ModelSummary => ({
    id: row.id,
    name: row.name,
    kind: row.kind,
    source: row.source,
    config: JSON.parse(row.config) as Record<string, unknown>,
    createdAt: row.created_at,
    size: files.reduce((total, file) => total + file.size, 0),
    files: files.map((file) => ({ name: file.name, size: file.size, sha256: file.sha256 })),
  });

  async function writeFile(modelId: string, file: ModelFileInput): Promise<void> {
    const fileId = q.insertFile.run(modelId, file.name).lastInsertRowid;
    const hash = createHash('sha256');
    // better-sqlite3 copies bound bytes into SQLite, so one staging buffer serves every chunk.
    const staging = Buffer.allocUnsafe(CHUNK_BYTES);
    let staged = 0;
    let size = 0;
    let seq = 0;
    for await (const piece of piecesOf(file)) {
      hash.update(piece);
      size += piece.length;
      let offset = 0;
      while (offset < piece.length) {
        if (staged === 0 && piece.length - offset >= CHUNK_BYTES) {
          q.insertChunk.run(fileId, seq++, piece.subarray(offset, offset + CHUNK_BYTES));
          offset += CHUNK_BYTES;
          continue;
        }
        const n = Math.min(CHUNK_BYTES - staged, piece.length - offset);
        staging.set(piece.subarray(offset, offset + n), staged);
        staged += n;
        offset += n;
        if (staged === CHUNK_BYTES) {
          q.insertChunk.run(fileId, seq++, staging);
          staged = 0;
        }
      }
    }
    if (staged > 0) q.insertChunk.run(fileId, seq++, staging.subarray(0, staged));
    q.finishFile.run(size, seq, hash.digest('hex'), fileId);
  }

  /** Stores a model and its files; it appears in `list` only once every byte is written. */
  async function put(input: ModelInput): Promise<ModelSummary> {
    const configJson = checkInput(input);
    const id = randomUUID();
    q.insertModel.run(id, input.name, input.kind, input.source, configJson, now());
    try {
      for (const file of input.files) await writeFile(id, file);
      q.markComplete.run(id);
    } catch (error) {
      try {
        q.deleteModel.run(id);
      } catch {
        // The next openStore removes incomplete models anyway.
      }
      throw error;
    }
    return get(id)!;
  }

  /** Complete models, newest first. */
  function list(): ModelSummary[] {
    const filesByModel = new Map<string, FileRow[]>();
    for (const file of q.files.all()) {
      const files = filesByModel.get(file.model_id) ?? [];
      files.push(file);
      filesByModel.set(file.model_id, files);
    }
    return q.models.all().map((row) => toSummary(row, filesByModel.get(row.id) ?? []));
  }

  function get(id: string): ModelSummary | null {
    const row = q.model.get(id);
    return row ? toSummary(row, q.filesOf.all(id)) : null;
  }

  /** The whole file, after checking its size, chunk sequence and SHA-256 against what was recorded. */
  function readFile(modelId: string, fileName: string): Buffer {
    const file = q.file.get(modelId, fileName);
    if (!file) {
      throw new StoreError(
        'NOT_FOUND',
        q.model.get(modelId) ? `Model ${modelId} has no file "${fileName}".` : `No model with id ${JSON.stringify(modelId)}.`,
      );
    }
    const damaged = (what: string) =>
      new StoreError('CHECKSUM_MISMATCH', `The stored file "${fileName}" of model ${modelId} is damaged: ${what}.`);
    const bytes = Buffer.allocUnsafe(file.size);
    let offset = 0;
    let expectedSeq = 0;
    for (const chunk of q.chunks.iterate(file.id)) {
      if (chunk.seq !== expectedSeq) throw damaged(`chunk ${expectedSeq} is missing`);
      if (offset + chunk.data.length > file.size) throw damaged(`it holds more than the ${file.size} bytes recorded`);
      chunk.data.copy(bytes, offset);
      offset += chunk.data.length;
      expectedSeq++;
    }
    if (expectedSeq !== file.chunk_count) throw damaged(`${file.chunk_count - expectedSeq} of ${file.chunk_count} chunks are missing`);
    if (offset !== file.size) throw damaged(`it holds ${offset} bytes, not the ${file.size} recorded`);
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== file.sha256) throw damaged(`its SHA-256 is ${actual}, not the ${file.sha256} recorded when it was written`);
    return bytes;
  }

  /**
   * Gives free pages back to the file system in small steps. Best effort, so it never rejects: it stops when
   * the store closes or a step fails (say, another process holds the write lock), and the pages left are
   * reused by the next import or returned by the next call.
   */
  async function reclaimFreePages(): Promise<void> {
    try {
      while (db.open && (db.pragma('freelist_count', { simple: true }) as number) > 0) {
        db.pragma(`incremental_vacuum(${RECLAIM_PAGES_PER_STEP})`);
        await nextTurn();
      }
    } catch {
      // See above: leftover free pages cost disk space, never correctness.
    }
  }

  /** Deletes a model and its files, then gives their space back to the disk; false if there was no such model. */
  async function remove(id: string): Promise<boolean> {
    const deleted = q.deleteModel.run(id).changes > 0;
    if (deleted) await reclaimFreePages();
    return deleted;
  }

  /** Removes half-written models left by a crash during `put`; returns how many. */
  function deleteIncomplete(): number {
    return q.deleteIncomplete.run().changes;
  }

  return { put, list, get, readFile, delete: remove, deleteIncomplete, reclaimFreePages };
}
