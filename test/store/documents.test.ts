import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InklingApi } from '../../main/ipc/contract.js';
import { openStore, StoreError, type OpenedStore } from '../../main/store/index.js';
import { DAY, MINUTE, manualClock, tempDataDir } from './helpers.js';

// Checked by tsc: the store answers the contract's document and settings methods with the same arguments and
// results, only synchronously, so the IPC handlers can be one line each.
type Synchronous<F> = F extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : never;
type StoreSideMethods =
  | 'listDocuments'
  | 'getDocument'
  | 'createDocument'
  | 'saveDocument'
  | 'deleteDocument'
  | 'restoreDocument'
  | 'listRevisions'
  | 'restoreRevision'
  | 'getSettings'
  | 'updateSettings';
export const storeFitsContract: OpenedStore extends { [K in StoreSideMethods]: Synchronous<InklingApi[K]> } ? true : never = true;

function openWithClock() {
  const clock = manualClock();
  const store = openStore(tempDataDir(), { now: clock.now, trashRetentionDays: null });
  return { store, clock };
}

const errorCode = (code: string) => (error: unknown) => error instanceof StoreError && error.code === code;

test('create, get, save and list documents', () => {
  const { store, clock } = openWithClock();
  const untitled = store.createDocument();
  assert.equal(untitled.title, 'Untitled');
  assert.equal(untitled.body, '');
  assert.match(untitled.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const blank = store.createDocument('   ');
  assert.equal(blank.title, 'Untitled');
  const fromJson = store.createDocument(null); // what JSON makes of an omitted argument
  assert.equal(fromJson.title, 'Untitled');

  clock.advance(1000);
  const letter = store.createDocument('Letter');
  clock.advance(1000);
  const saved = store.saveDocument(untitled.id, { body: 'Dear   friend,\n\nIt has been a while.' });
  assert.equal(saved.updatedAt, clock.now());
  assert.equal(saved.createdAt, untitled.createdAt);
  assert.equal(saved.snippet, 'Dear friend, It has been a while.');
  assert.equal(saved.title, 'Untitled');

  assert.deepEqual(store.getDocument(untitled.id), { ...saved, body: 'Dear   friend,\n\nIt has been a while.' });
  assert.equal(store.getDocument('no-such-id'), null);

  // Newest change first; among equal times, the newer document first.
  assert.deepEqual(store.listDocuments().map((d) => d.id), [untitled.id, letter.id, fromJson.id, blank.id]);
  clock.advance(1000);
  store.saveDocument(letter.id, { title: 'Letter to Ann' });
  assert.deepEqual(store.listDocuments()[0], {
    id: letter.id,
    title: 'Letter to Ann',
    createdAt: letter.createdAt,
    updatedAt: clock.now(),
    snippet: '',
  });
});

test('a save that changes nothing does not touch updatedAt', () => {
  const { store, clock } = openWithClock();
  const doc = store.createDocument('Same');
  store.saveDocument(doc.id, { body: 'text' });
  const before = store.getDocument(doc.id)!;
  clock.advance(5000);
  assert.equal(store.saveDocument(doc.id, { title: 'Same', body: 'text' }).updatedAt, before.updatedAt);
  assert.equal(store.saveDocument(doc.id, {}).updatedAt, before.updatedAt);
});

test('saving an unknown document or bad input fails with a clear error', () => {
  const { store } = openWithClock();
  assert.throws(() => store.saveDocument('missing', { body: 'x' }), errorCode('NOT_FOUND'));
  const doc = store.createDocument();
  assert.throws(() => store.saveDocument(doc.id, { body: 42 as unknown as string }), /document body must be a string \(got 42\)/);
  assert.throws(() => store.saveDocument(doc.id, null as unknown as {}), errorCode('INVALID_INPUT'));
});

test('big bodies round-trip and the snippet keeps only the start', () => {
  const { store } = openWithClock();
  const doc = store.createDocument('Novel');
  const body = 'It was a dark and stormy night; \u{1F327} the rain fell in torrents.\n'.repeat(40_000); // ~2.6 MB
  store.saveDocument(doc.id, { body });
  const loaded = store.getDocument(doc.id)!;
  assert.equal(loaded.body.length, body.length);
  assert.ok(loaded.body === body);
  assert.equal(loaded.snippet.length, 200);
  assert.ok(body.replace(/\s+/g, ' ').startsWith(loaded.snippet));
});

test('search matches title and body, ignoring case, with LIKE wildcards taken literally', () => {
  const { store, clock } = openWithClock();
  const a = store.createDocument('Garden notes');
  store.saveDocument(a.id, { body: 'Tomatoes need 100% sun_light.' });
  clock.advance(10);
  const b = store.createDocument('\u00dcber \u00c4rger'); // Über Ärger
  store.saveDocument(b.id, { body: 'Die Stra\u00dfe war nass. Tomato soup.' }); // Straße
  clock.advance(10);
  const c = store.createDocument('Shopping');
  store.saveDocument(c.id, { body: 'milk, bread' });

  const ids = (query: string) => store.listDocuments(query).map((d) => d.id);
  assert.deepEqual(ids('GARDEN'), [a.id]);
  assert.deepEqual(ids('tomato'), [b.id, a.id]);
  assert.deepEqual(ids('100%'), [a.id]);
  assert.deepEqual(ids('%'), [a.id]);
  assert.deepEqual(ids('tomatoe_'), []); // "_" is not a wildcard (it would match "Tomatoes")
  assert.deepEqual(ids('sun_light'), [a.id]);
  assert.deepEqual(ids('\u00e4rger'), [b.id]); // non-ASCII case folding: ärger
  assert.deepEqual(ids('STRA\u00dfE'), [b.id]); // STRAßE
  assert.deepEqual(ids('nothing like this'), []);
  assert.equal(ids('  ').length, 3);
  assert.equal(store.listDocuments(null).length, 3);

  store.deleteDocument(a.id);
  assert.deepEqual(ids('tomato'), [b.id]);
});

test('delete moves to the trash, restore undoes it, purge removes old trash for good', () => {
  const { store, clock } = openWithClock();
  const keep = store.createDocument('Keep');
  const doc = store.createDocument('Draft');
  store.saveDocument(doc.id, { body: 'some words' });

  store.deleteDocument(doc.id);
  store.deleteDocument(doc.id); // twice is harmless
  assert.equal(store.getDocument(doc.id), null);
  assert.deepEqual(store.listDocuments().map((d) => d.id), [keep.id]);
  assert.deepEqual(store.listTrash().map((d) => d.id), [doc.id]);
  assert.throws(() => store.saveDocument(doc.id, { body: 'late autosave' }), errorCode('DOCUMENT_IN_TRASH'));
  assert.throws(() => store.deleteDocument('missing'), errorCode('NOT_FOUND'));

  const restored = store.restoreDocument(doc.id);
  assert.equal(restored.title, 'Draft');
  assert.equal(store.getDocument(doc.id)!.body, 'some words');
  assert.deepEqual(store.listTrash(), []);
  assert.throws(() => store.restoreDocument('missing'), errorCode('NOT_FOUND'));

  store.deleteDocument(doc.id);
  clock.advance(10 * DAY);
  store.deleteDocument(keep.id);
  assert.equal(store.purgeTrash(30), 0);
  clock.advance(21 * DAY);
  assert.equal(store.purgeTrash(30), 1);
  assert.deepEqual(store.listTrash().map((d) => d.id), [keep.id]);
  assert.throws(() => store.restoreDocument(doc.id), errorCode('NOT_FOUND'));
  assert.deepEqual(store.listRevisions(doc.id), []);
});

test('opening the store purges trash older than trashRetentionDays', () => {
  const dir = tempDataDir();
  const clock = manualClock();
  const first = openStore(dir, { now: clock.now });
  const doc = first.createDocument('Old');
  first.deleteDocument(doc.id);
  first.close();
  clock.advance(29 * DAY);
  openStore(dir, { now: clock.now }).close();
  clock.advance(2 * DAY);
  const reopened = openStore(dir, { now: clock.now });
  assert.deepEqual(reopened.listTrash(), []);
  reopened.close();
});

test('revisions: kept after a few minutes or a big change, not for every keystroke', () => {
  const { store, clock } = openWithClock();
  const doc = store.createDocument('Story');
  const text = 'Once upon a time there was a writer who typed slowly.';
  for (let i = 1; i <= text.length; i++) {
    clock.advance(2000);
    store.saveDocument(doc.id, { body: text.slice(0, i) });
  }
  // ~110 s of typing, small edits: nothing kept yet.
  assert.deepEqual(store.listRevisions(doc.id), []);

  clock.advance(5 * MINUTE);
  store.saveDocument(doc.id, { body: `${text} The end.` });
  let revisions = store.listRevisions(doc.id);
  assert.equal(revisions.length, 1);
  assert.deepEqual(revisions[0], { id: revisions[0].id, documentId: doc.id, title: 'Story', createdAt: clock.now(), length: text.length });
  assert.equal(store.getRevision(doc.id, revisions[0].id)!.body, text);

  // A big paste right away is kept too (the text before it).
  clock.advance(1000);
  const pasted = `${text} The end.${' Lorem ipsum dolor sit amet.'.repeat(40)}`;
  store.saveDocument(doc.id, { body: pasted });
  revisions = store.listRevisions(doc.id);
  assert.equal(revisions.length, 2);
  assert.equal(store.getRevision(doc.id, revisions[0].id)!.body, `${text} The end.`);

  // Title-only changes never make revisions.
  clock.advance(10 * MINUTE);
  store.saveDocument(doc.id, { title: 'Story, renamed' });
  assert.equal(store.listRevisions(doc.id).length, 2);
});

test('restoring a revision keeps the current text as a revision first', () => {
  const { store, clock } = openWithClock();
  const doc = store.createDocument('Essay');
  store.saveDocument(doc.id, { body: 'first draft' });
  clock.advance(10 * MINUTE);
  store.saveDocument(doc.id, { body: 'second draft' });
  clock.advance(1000);
  store.saveDocument(doc.id, { title: 'Essay v2', body: 'second draft, edited' });
  const [firstDraft] = store.listRevisions(doc.id);
  assert.equal(store.getRevision(doc.id, firstDraft.id)!.body, 'first draft');

  clock.advance(1000);
  const restored = store.restoreRevision(doc.id, firstDraft.id);
  assert.equal(restored.body, 'first draft');
  assert.equal(restored.title, 'Essay');
  assert.equal(restored.updatedAt, clock.now());
  assert.deepEqual(store.getDocument(doc.id), restored);

  const revisions = store.listRevisions(doc.id);
  assert.equal(revisions.length, 2);
  const kept = store.getRevision(doc.id, revisions[0].id)!;
  assert.equal(kept.body, 'second draft, edited');
  assert.equal(kept.title, 'Essay v2');

  // ...so the restore itself can be undone.
  assert.equal(store.restoreRevision(doc.id, kept.id).body, 'second draft, edited');
  assert.equal(store.listRevisions(doc.id).length, 3);

  assert.throws(() => store.restoreRevision(doc.id, 999_999), errorCode('NOT_FOUND'));
  const other = store.createDocument('Other');
  assert.throws(() => store.restoreRevision(other.id, firstDraft.id), errorCode('NOT_FOUND'));
});

