import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { DB_FILE_NAME, LATEST_SCHEMA_VERSION, openStore, StoreError } from '../../main/store/index.js';
import { MIGRATIONS, migrate, type Migration } from '../../main/store/migrations.js';
import { manualClock, tempDataDir } from './helpers.js';

const userVersion = (path: string) => {
  const db = new Sqlite(path, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true });
  } finally {
    db.close();
  }
};

test('a new store is a WAL database at the latest schema version', () => {
  const dir = join(tempDataDir(), 'nested', 'data'); // the folder is created if missing
  const store = openStore(dir);
  assert.equal(store.path, join(dir, DB_FILE_NAME));
  assert.equal(store.recovered, null);
  assert.ok(LATEST_SCHEMA_VERSION >= 2);
  const probe = new Sqlite(store.path, { readonly: true });
  assert.equal(probe.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(probe.pragma('user_version', { simple: true }), LATEST_SCHEMA_VERSION);
  assert.equal(probe.pragma('auto_vacuum', { simple: true }), 2); // incremental
  probe.close();
  store.close();
  store.close(); // twice is harmless
});

test('close() checkpoints the WAL: the main file alone holds every commit', () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  const doc = store.createDocument('Checkpointed');
  store.saveDocument(doc.id, { body: 'in the main file' });
  store.close();
  assert.ok(!existsSync(`${store.path}-wal`) || statSync(`${store.path}-wal`).size === 0);

  const copyDir = tempDataDir();
  copyFileSync(store.path, join(copyDir, DB_FILE_NAME)); // without any -wal
  const copy = openStore(copyDir);
  assert.equal(copy.getDocument(doc.id)?.body, 'in the main file');
  copy.close();
});

test('a version 1 database migrates to the latest version and keeps its data', () => {
  const dir = tempDataDir();
  const path = join(dir, DB_FILE_NAME);
  const v1 = new Sqlite(path);
  migrate(v1, 1);
  assert.equal(v1.pragma('user_version', { simple: true }), 1);
  v1.prepare(
    `INSERT INTO documents (id, title, snippet, created_at, updated_at, deleted_at, body)
     VALUES ('doc-1', 'From v1', 'hello', 1, 2, NULL, 'hello from version one')`,
  ).run();
  v1.prepare(`INSERT INTO settings (key, value) VALUES ('suggestionDelayMs', '750')`).run();
  v1.close();

  const store = openStore(dir);
  assert.equal(store.recovered, null);
  assert.equal(userVersion(path), LATEST_SCHEMA_VERSION);
  assert.equal(store.getDocument('doc-1')?.body, 'hello from version one');
  assert.equal(store.getSettings().suggestionDelayMs, 750);
  assert.deepEqual(store.models.list(), []); // a table from version 2
  store.close();
});

test('a failing migration leaves the database at the version before it', () => {
  const db = new Sqlite(':memory:');
  const failing: Migration = {
    version: MIGRATIONS.length + 1,
    description: 'half done, then fails',
    up(d) {
      d.exec('CREATE TABLE half_done (x INTEGER)');
      throw new Error('migration bug');
    },
  };
  assert.throws(() => migrate(db, failing.version, [...MIGRATIONS, failing]), /migration bug/);
  assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
  assert.equal(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'").pluck().get(), 0);
  db.close();
});

function corruptFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith(`${DB_FILE_NAME}.corrupt-`));
}

test('a file that is not SQLite is moved aside, with its -wal, and a fresh database is made', () => {
  const dir = tempDataDir();
  const garbage = Buffer.from('These are my notes, saved by some other program.\n'.repeat(200));
  writeFileSync(join(dir, DB_FILE_NAME), garbage);
  writeFileSync(join(dir, `${DB_FILE_NAME}-wal`), 'stale wal');
  const clock = manualClock(Date.UTC(2025, 4, 6, 7, 8, 9, 10));

  const store = openStore(dir, { now: clock.now });
  assert.ok(store.recovered);
  assert.equal(store.recovered.movedTo, join(dir, `${DB_FILE_NAME}.corrupt-2025-05-06T07-08-09-010Z`));
  assert.match(store.recovered.reason, /is not an SQLite database/);
  assert.ok(store.recovered.reason.includes(store.recovered.movedTo));
  assert.deepEqual(readFileSync(store.recovered.movedTo), garbage); // never overwritten
  assert.equal(readFileSync(`${store.recovered.movedTo}-wal`, 'utf8'), 'stale wal');

  const doc = store.createDocument('Fresh start');
  store.close();
  const reopened = openStore(dir, { now: clock.now });
  assert.equal(reopened.recovered, null);
  assert.equal(reopened.getDocument(doc.id)?.title, 'Fresh start');
  reopened.close();
  const moved = corruptFiles(dir);
  assert.ok(moved.includes(`${DB_FILE_NAME}.corrupt-2025-05-06T07-08-09-010Z`));
  assert.ok(moved.includes(`${DB_FILE_NAME}.corrupt-2025-05-06T07-08-09-010Z-wal`));
});

test('a truncated database is moved aside exactly as it was, WAL included', () => {
  const dir = tempDataDir();
  const clock = manualClock();
  const store = openStore(dir, { now: clock.now });
  for (let i = 0; i < 12; i++) store.saveDocument(store.createDocument(`Doc ${i}`).id, { body: `body ${i} `.repeat(5000) });
  store.close();
  const writer = openStore(dir, { now: clock.now });
  writer.createDocument('The latest commit, still in the WAL');
  // The files as a crash would leave them: the latest commit only in the WAL.
  const main = readFileSync(store.path);
  const wal = readFileSync(`${store.path}-wal`);
  assert.ok(wal.length > 0);
  writer.close();
  const truncated = main.subarray(0, Math.floor(main.length / 2));
  writeFileSync(store.path, truncated);
  writeFileSync(`${store.path}-wal`, wal);

  const recovered = openStore(dir, { now: clock.now });
  assert.match(recovered.recovered?.reason ?? '', /is damaged/);
  // Opening it to look must not have checkpointed the WAL into it.
  assert.deepEqual(readFileSync(recovered.recovered!.movedTo), truncated);
  assert.deepEqual(readFileSync(`${recovered.recovered!.movedTo}-wal`), wal);
  assert.deepEqual(recovered.listDocuments(), []);
  recovered.close();

  // A second recovery in the same millisecond gets its own name.
  writeFileSync(store.path, main.subarray(0, 10_000));
  const again = openStore(dir, { now: clock.now });
  assert.equal(again.recovered?.movedTo, `${recovered.recovered!.movedTo}-1`);
  again.close();
});

test('a database whose pages fail quick_check is moved aside', () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  for (let i = 0; i < 30; i++) store.createDocument(`Document number ${i}`);
  store.close();
  const probe = new Sqlite(store.path, { readonly: true });
  const page = probe
    .prepare("SELECT pageno FROM dbstat WHERE name = 'documents' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1")
    .pluck()
    .get() as number;
  const pageSize = probe.pragma('page_size', { simple: true }) as number;
  probe.close();
  const bytes = readFileSync(store.path);
  bytes.fill(0xab, (page - 1) * pageSize + 8, (page - 1) * pageSize + 200); // scramble its cell pointers
  writeFileSync(store.path, bytes);

  const reopened = openStore(dir);
  assert.match(reopened.recovered?.reason ?? '', /quick_check found: .*page/);
  assert.deepEqual(readFileSync(reopened.recovered!.movedTo), bytes);
  reopened.close();
});

test('a database from a newer Inkling is refused and left untouched', () => {
  const dir = tempDataDir();
  const store = openStore(dir);
  store.createDocument('Written by a future version');
  store.close();
  const db = new Sqlite(store.path);
  db.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`);
  db.close();
  const before = readFileSync(store.path);

  assert.throws(
    () => openStore(dir),
    (error: unknown) =>
      error instanceof StoreError &&
      error.code === 'SCHEMA_TOO_NEW' &&
      error.message.includes(`schema version ${LATEST_SCHEMA_VERSION + 1}`) &&
      /Update Inkling/.test(error.message),
  );
  assert.deepEqual(readFileSync(store.path), before);
  assert.deepEqual(corruptFiles(dir), []);
});

test('a file that cannot be opened for another reason is reported, not moved aside', () => {
  const dir = tempDataDir();
  mkdirSync(join(dir, DB_FILE_NAME));
  assert.throws(() => openStore(dir), (error: unknown) => error instanceof StoreError && error.code === 'CANNOT_OPEN');
  assert.ok(statSync(join(dir, DB_FILE_NAME)).isDirectory());
  assert.deepEqual(corruptFiles(dir), []);
});
