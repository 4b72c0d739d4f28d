import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { CHUNK_BYTES, openStore, StoreError, type ModelInput } from '../../main/store/index.js';
import { tempDataDir } from './helpers.js';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const MiB = 1024 * 1024;

function chunkLengths(path: string, modelId: string, fileName: string): number[] {
  const db = new Sqlite(path, { readonly: true });
  try {
    return db
      .prepare(
        `SELECT length(c.data) FROM model_file_chunks c JOIN model_files f ON f.id = c.file_id
         WHERE f.model_id = ? AND f.name = ? ORDER BY c.seq`,
      )
      .pluck()
      .all(modelId, fileName) as number[];
  } finally {
    db.close();
  }
}

test('a model is stored in 4 MiB chunks and read back whole', async () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  const weights = randomBytes(9 * MiB + 123);
  const config = { n_layer: 2, n_embd: 64, vocab_size: 50257 };
  const configBytes = Buffer.from(JSON.stringify(config));
  const model = await store.models.put({
    name: 'tiny-gpt2',
    kind: 'base',
    source: 'bundled',
    config,
    files: [
      { name: 'model.safetensors', bytes: weights },
      { name: 'config.json', bytes: configBytes },
    ],
  });
  assert.deepEqual(model, {
    id: model.id,
    name: 'tiny-gpt2',
    kind: 'base',
    source: 'bundled',
    config,
    createdAt: model.createdAt,
    size: weights.length + configBytes.length,
    files: [
      { name: 'model.safetensors', size: weights.length, sha256: sha256(weights) },
      { name: 'config.json', size: configBytes.length, sha256: sha256(configBytes) },
    ],
  });
  assert.deepEqual(store.models.list(), [model]);
  assert.deepEqual(store.models.get(model.id), model);
  assert.ok(store.models.readFile(model.id, 'model.safetensors').equals(weights));
  assert.ok(store.models.readFile(model.id, 'config.json').equals(configBytes));
  store.close();
  assert.deepEqual(chunkLengths(store.path, model.id, 'model.safetensors'), [CHUNK_BYTES, CHUNK_BYTES, 1 * MiB + 123]);
  assert.equal(CHUNK_BYTES, 4 * MiB);
});

test('a streamed file is re-cut into chunks whatever the piece sizes', async () => {
  const store = openStore(tempDataDir());
  const bytes = randomBytes(8 * MiB + 5);
  const pieces: Buffer[] = [];
  for (let offset = 0, step = 1; offset < bytes.length; step = (step * 7919) % 3 * MiB + 1) {
    pieces.push(bytes.subarray(offset, offset + step));
    offset += step;
  }
  const model = await store.models.put({
    name: 'streamed',
    kind: 'checkpoint',
    source: 'run 1',
    config: {},
    files: [{ name: 'weights.bin', stream: Readable.from(pieces) }],
  });
  assert.equal(model.files[0].sha256, sha256(bytes));
  assert.ok(store.models.readFile(model.id, 'weights.bin').equals(bytes));
  store.close();
  assert.deepEqual(chunkLengths(store.path, model.id, 'weights.bin'), [CHUNK_BYTES, CHUNK_BYTES, 5]);
});

test('a model being written is invisible until its last byte is in', async () => {
  const store = openStore(tempDataDir());
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let firstPieceTaken!: () => void;
  const halfway = new Promise<void>((resolve) => (firstPieceTaken = resolve));
  async function* slowStream() {
    yield randomBytes(5 * MiB);
    firstPieceTaken();
    await gate;
    yield randomBytes(10);
  }
  const writing = store.models.put({ name: 'slow', kind: 'base', source: 'test', config: {}, files: [{ name: 'w', stream: slowStream() }] });
  await halfway;
  assert.deepEqual(store.models.list(), []);
  release();
  const model = await writing;
  assert.deepEqual(store.models.list().map((m) => m.id), [model.id]);
  store.close();
});

test('a byte flipped on disk inside a chunk is caught by the checksum', async () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  const weights = randomBytes(6 * MiB);
  const other = randomBytes(1000);
  const model = await store.models.put({
    name: 'victim',
    kind: 'base',
    source: 'test',
    config: {},
    files: [
      { name: 'model.safetensors', bytes: weights },
      { name: 'vocab.bin', bytes: other },
    ],
  });
  store.close();

  const file = readFileSync(store.path);
  const needle = weights.subarray(5 * MiB, 5 * MiB + 64); // in the second chunk
  const at = file.indexOf(needle);
  assert.ok(at > 0, 'the chunk bytes are in the database file');
  file[at + 10] ^= 0x01;
  writeFileSync(store.path, file);

  const reopened = openStore(dir);
  assert.equal(reopened.recovered, null); // SQLite itself cannot tell: the page structure is intact
  assert.throws(
    () => reopened.models.readFile(model.id, 'model.safetensors'),
    (error: unknown) =>
      error instanceof StoreError &&
      error.code === 'CHECKSUM_MISMATCH' &&
      error.message.includes(`"model.safetensors" of model ${model.id} is damaged`) &&
      error.message.includes(`not the ${sha256(weights)} recorded`),
  );
  assert.ok(reopened.models.readFile(model.id, 'vocab.bin').equals(other));
  reopened.close();
});

test('a missing chunk is named', async () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  const model = await store.models.put({
    name: 'holey',
    kind: 'base',
    source: 'test',
    config: {},
    files: [{ name: 'w', bytes: randomBytes(9 * MiB) }],
  });
  store.close();
  const db = new Sqlite(store.path);
  db.prepare('DELETE FROM model_file_chunks WHERE seq = 1').run();
  db.close();
  const reopened = openStore(dir);
  assert.throws(() => reopened.models.readFile(model.id, 'w'), /damaged: chunk 1 is missing/);
  reopened.close();
});

test('a failed or crashed write leaves nothing behind', async () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  async function* brokenStream() {
    yield randomBytes(5 * MiB);
    throw new Error('disk unplugged');
  }
  await assert.rejects(
    store.models.put({ name: 'broken', kind: 'base', source: 'test', config: {}, files: [{ name: 'w', stream: brokenStream() }] }),
    /disk unplugged/,
  );
  assert.deepEqual(store.models.list(), []);
  store.close();

  // What a crash mid-import leaves: a model row without its final `complete = 1`.
  const db = new Sqlite(store.path);
  db.prepare("INSERT INTO models (id, name, kind, source, config, created_at, complete) VALUES ('half', 'h', 'base', 's', '{}', 1, 0)").run();
  const fileId = db.prepare("INSERT INTO model_files (model_id, name) VALUES ('half', 'w')").run().lastInsertRowid;
  db.prepare('INSERT INTO model_file_chunks (file_id, seq, data) VALUES (?, 0, ?)').run(fileId, randomBytes(1000));
  db.close();

  const reopened = openStore(dir);
  assert.deepEqual(reopened.models.list(), []);
  assert.throws(() => reopened.models.readFile('half', 'w'), (e: unknown) => e instanceof StoreError && e.code === 'NOT_FOUND');
  reopened.close();
  const check = new Sqlite(store.path, { readonly: true });
  assert.equal(check.prepare('SELECT count(*) FROM model_files').pluck().get(), 0);
  assert.equal(check.prepare('SELECT count(*) FROM model_file_chunks').pluck().get(), 0);
  check.close();
});

test('deleting a model removes its chunks and gives the space back', async () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  const doc = store.createDocument('Survives');
  const model = await store.models.put({ name: 'big', kind: 'checkpoint', source: 'test', config: {}, files: [{ name: 'w', bytes: randomBytes(12 * MiB) }] });
  store.close();
  const sizeWithModel = statSync(store.path).size;

  const reopened = openStore(dir);
  const deleting = reopened.models.delete(model.id);
  assert.deepEqual(reopened.models.list(), []); // gone at once, before the space is back
  assert.equal(await deleting, true);
  assert.equal(await reopened.models.delete(model.id), false);
  assert.deepEqual(reopened.models.list(), []);
  assert.equal(reopened.getDocument(doc.id)?.title, 'Survives');
  reopened.close();
  assert.ok(statSync(store.path).size < sizeWithModel - 11 * MiB, `${statSync(store.path).size} vs ${sizeWithModel}`);
});

test('bad model input and unknown names fail clearly', async () => {
  const store = openStore(tempDataDir());
  const good: ModelInput = { name: 'm', kind: 'base', source: 's', config: {}, files: [{ name: 'a', bytes: new Uint8Array(1) }] };
  const invalid = (e: unknown) => e instanceof StoreError && e.code === 'INVALID_INPUT';
  await assert.rejects(store.models.put({ ...good, kind: 'lora' as 'base' }), invalid);
  await assert.rejects(store.models.put({ ...good, files: [] }), invalid);
  await assert.rejects(store.models.put({ ...good, files: [good.files[0], good.files[0]] }), /unique/);
  await assert.rejects(store.models.put({ ...good, files: [{ name: 'a' } as ModelInput['files'][0]] }), /either bytes or a stream/);
  await assert.rejects(store.models.put({ ...good, config: { n: 1n } }), /plain JSON/);
  assert.deepEqual(store.models.list(), []);

  const model = await store.models.put({ ...good, files: [{ name: 'a', bytes: new Uint8Array([7, 8, 9]) }] }); // not a Buffer
  assert.deepEqual([...store.models.readFile(model.id, 'a')], [7, 8, 9]);
  assert.throws(() => store.models.readFile('nope', 'a'), /No model with id "nope"/);
  assert.throws(() => store.models.readFile(model.id, 'b'), new RegExp(`Model ${model.id} has no file "b"`));
  store.close();
});
