import { randomUUID } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { DocumentFull, DocumentSummary, RevisionSummary } from '../ipc/contract.js';
import { StoreError, invalidInput } from './errors.js';
import { shouldKeepRevision, type RevisionPolicy } from './revision-policy.js';

export const DEFAULT_TITLE = 'Untitled';
/** Characters of the body kept, whitespace collapsed, as the list's snippet. */
export const SNIPPET_LENGTH = 200;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface DocumentPatch {
  title?: string;
  body?: string;
}

export interface RevisionFull extends RevisionSummary {
  body: string;
}

interface DocumentRow {
  id: string;
  title: string;
  snippet: string;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}
interface DocumentRowWithBody extends DocumentRow {
  body: string;
}
interface RevisionRow {
  id: number;
  document_id: string;
  title: string;
  created_at: number;
  length: number;
}

const SUMMARY_COLUMNS = 'id, title, snippet, created_at, updated_at, deleted_at';
const REVISION_COLUMNS = 'id, document_id, title, created_at, length';

export function snippetOf(body: string): string {
  let snippet = body.slice(0, SNIPPET_LENGTH * 4).replace(/\s+/g, ' ').trim().slice(0, SNIPPET_LENGTH);
  // Never end on half of a surrogate pair: SQLite would store it as U+FFFD.
  const last = snippet.charCodeAt(snippet.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) snippet = snippet.slice(0, -1);
  return snippet;
}

/** LIKE pattern matching `text` anywhere, with LIKE's own wildcards taken literally (ESCAPE '\'). */
export function likeContains(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

const toSummary = (row: DocumentRow): DocumentSummary => ({
  id: row.id,
  title: row.title,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  snippet: row.snippet,
});

const toFull = (row: DocumentRowWithBody): DocumentFull => ({ ...toSummary(row), body: row.body });

const toRevision = (row: RevisionRow): RevisionSummary => ({
  id: row.id,
  documentId: row.document_id,
  title: row.title,
  createdAt: row.created_at,
  length: row.length,
});

function requireString(what: string, value: unknown): string {
  if (typeof value !== 'string') throw invalidInput(`${what} must be a string`, value);
  return value;
}

/** Documents, their trash and their revisions. Every change of more than one row is one transaction. */
export function createDocumentStore(db: Database, now: () => number, policy: RevisionPolicy) {
  // SQLite's LIKE folds case for ASCII letters only; queries with other letters go through JavaScript's
  // Unicode case folding instead (slower, so only when needed).
  db.function('inkling_contains_folded', { deterministic: true }, (haystack: unknown, foldedNeedle: unknown) =>
    typeof haystack === 'string' && typeof foldedNeedle === 'string' && haystack.toLowerCase().includes(foldedNeedle)
      ? 1
      : 0,
  );

  const q = {
    insert: db.prepare<[string, string, string, number, number, string]>(
      'INSERT INTO documents (id, title, snippet, created_at, updated_at, deleted_at, body) VALUES (?, ?, ?, ?, ?, NULL, ?)',
    ),
    summary: db.prepare<[string], DocumentRow>(`SELECT ${SUMMARY_COLUMNS} FROM documents WHERE id = ?`),
    full: db.prepare<[string], DocumentRowWithBody>(`SELECT ${SUMMARY_COLUMNS}, body FROM documents WHERE id = ?`),
    list: db.prepare<[], DocumentRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM documents WHERE deleted_at IS NULL ORDER BY updated_at DESC, rowid DESC`,
    ),
    searchLike: db.prepare<[string, string], DocumentRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM documents
       WHERE deleted_at IS NULL AND (title LIKE ? ESCAPE '\\' OR body LIKE ? ESCAPE '\\')
       ORDER BY updated_at DESC, rowid DESC`,
    ),
    searchFolded: db.prepare<[string, string], DocumentRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM documents
       WHERE deleted_at IS NULL AND (inkling_contains_folded(title, ?) OR inkling_contains_folded(body, ?))
       ORDER BY updated_at DESC, rowid DESC`,
    ),
    trashList: db.prepare<[], DocumentRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM documents WHERE deleted_at IS NOT NULL ORDER BY deleted_at DESC, rowid DESC`,
    ),
    update: db.prepare<[string, string, string, number, string]>(
      'UPDATE documents SET title = ?, snippet = ?, body = ?, updated_at = ? WHERE id = ?',
    ),
    trash: db.prepare<[number, string]>('UPDATE documents SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL'),
    untrash: db.prepare<[string]>('UPDATE documents SET deleted_at = NULL WHERE id = ?'),
    purge: db.prepare<[number]>('DELETE FROM documents WHERE deleted_at IS NOT NULL AND deleted_at <= ?'),
    lastRevision: db.prepare<[string], RevisionRow>(
      `SELECT ${REVISION_COLUMNS} FROM revisions WHERE document_id = ? ORDER BY id DESC LIMIT 1`,
    ),
    revisionBody: db.prepare<[number], string>('SELECT body FROM revisions WHERE id = ?').pluck(),
    insertRevision: db.prepare<[string, string, number, number, string]>(
      'INSERT INTO revisions (document_id, title, created_at, length, body) VALUES (?, ?, ?, ?, ?)',
    ),
    revisions: db.prepare<[string], RevisionRow>(
      `SELECT ${REVISION_COLUMNS} FROM revisions WHERE document_id = ? ORDER BY id DESC`,
    ),
    revision: db.prepare<[number, string], RevisionRow & { body: string }>(
      `SELECT ${REVISION_COLUMNS}, body FROM revisions WHERE id = ? AND document_id = ?`,
    ),
  };

  function notFound(id: string): StoreError {
    return new StoreError('NOT_FOUND', `No document with id ${JSON.stringify(id)}.`);
  }

  /** The live document, or a clear error if it does not exist or is in the trash. */
  function liveDocument(id: string): DocumentRowWithBody {
    const row = q.full.get(requireString('A document id', id));
    if (!row) throw notFound(id);
    if (row.deleted_at !== null) {
      throw new StoreError('DOCUMENT_IN_TRASH', `The document "${row.title}" is in the trash; restore it before changing it.`);
    }
    return row;
  }

  /** Records a version of the document unless the newest revision already holds exactly that. */
  function keepRevision(documentId: string, title: string, body: string, at: number): void {
    const last = q.lastRevision.get(documentId);
    if (last && last.title === title && last.length === body.length && q.revisionBody.get(last.id) === body) return;
    q.insertRevision.run(documentId, title, at, body.length, body);
  }

  /** `title` may be null as well as undefined: JSON (the browser bridge) turns an omitted argument into null. */
  function create(title?: string | null): DocumentFull {
    if (title != null) requireString('A document title', title);
    const chosenTitle = title == null || title.trim() === '' ? DEFAULT_TITLE : title;
    const at = now();
    const id = randomUUID();
    q.insert.run(id, chosenTitle, '', at, at, '');
    return { id, title: chosenTitle, createdAt: at, updatedAt: at, snippet: '', body: '' };
  }

  /** A live document with its body; null if there is none or it is in the trash. */
  function get(id: string): DocumentFull | null {
    const row = q.full.get(requireString('A document id', id));
    return row && row.deleted_at === null ? toFull(row) : null;
  }

  /** Live documents, most recently changed first. */
  function list(): DocumentSummary[] {
    return q.list.all().map(toSummary);
  }

  /** Live documents whose title or body contains `query`, ignoring case; all of them for a blank query. */
  function search(query: string): DocumentSummary[] {
    const needle = requireString('A search query', query).trim();
    if (needle === '') return list();
    let rows: DocumentRow[];
    if (/^[\x00-\x7f]*$/.test(needle)) {
      const pattern = likeContains(needle);
      rows = q.searchLike.all(pattern, pattern);
    } else {
      const folded = needle.toLowerCase();
      rows = q.searchFolded.all(folded, folded);
    }
    return rows.map(toSummary);
  }

  const saveTransaction = db.transaction((id: string, patch: DocumentPatch): DocumentSummary => {
    const current = liveDocument(id);
    const title = patch.title ?? current.title;
    const body = patch.body ?? current.body;
    if (title === current.title && body === current.body) return toSummary(current);
    const at = now();
    if (body !== current.body) {
      const lastKeptAt = q.lastRevision.get(id)?.created_at ?? current.created_at;
      if (shouldKeepRevision(current.body, body, lastKeptAt, at, policy)) keepRevision(id, current.title, current.body, at);
    }
    const snippet = snippetOf(body);
    q.update.run(title, snippet, body, at, id);
    return { id, title, createdAt: current.created_at, updatedAt: at, snippet };
  });

  /** Changes title and/or body; may keep the previous text as a revision (see revision-policy.ts). */
  function save(id: string, patch: DocumentPatch): DocumentSummary {
    requireString('A document id', id);
    if (typeof patch !== 'object' || patch === null) throw invalidInput('A document patch must be an object', patch);
    if (patch.title !== undefined) requireString('A document title', patch.title);
    if (patch.body !== undefined) requireString('A document body', patch.body);
    return saveTransaction.immediate(id, patch);
  }

  /** Moves a document to the trash (the undo is `restore`). Trashing it twice is harmless. */
  function trash(id: string): void {
    if (q.trash.run(now(), requireString('A document id', id)).changes === 0 && !q.summary.get(id)) throw notFound(id);
  }

  /** Takes a document out of the trash. Restoring a live document is harmless. */
  function restore(id: string): DocumentSummary {
    if (q.untrash.run(requireString('A document id', id)).changes === 0) throw notFound(id);
    return toSummary(q.summary.get(id)!);
  }

  /** Documents in the trash, most recently trashed first. */
  function listTrash(): DocumentSummary[] {
    return q.trashList.all().map(toSummary);
  }

  /** Deletes for good (revisions included) what has been in the trash at least `olderThanDays`; returns how many. */
  function purgeTrash(olderThanDays: number): number {
    if (typeof olderThanDays !== 'number' || !(olderThanDays >= 0)) {
      throw invalidInput('purgeTrash needs a number of days of at least 0', olderThanDays);
    }
    return q.purge.run(now() - olderThanDays * DAY_MS).changes;
  }

  /** A document's revisions, newest first. */
  function listRevisions(documentId: string): RevisionSummary[] {
    return q.revisions.all(requireString('A document id', documentId)).map(toRevision);
  }

  function getRevision(documentId: string, revisionId: number): RevisionFull | null {
    const row = q.revision.get(revisionId, requireString('A document id', documentId));
    return row ? { ...toRevision(row), body: row.body } : null;
  }

  const restoreRevisionTransaction = db.transaction((documentId: string, revisionId: number): DocumentFull => {
    const current = liveDocument(documentId);
    const revision = q.revision.get(revisionId, documentId);
    if (!revision) {
      throw new StoreError('NOT_FOUND', `Document ${JSON.stringify(documentId)} has no revision ${revisionId}.`);
    }
    if (revision.title === current.title && revision.body === current.body) return toFull(current);
    const at = now();
    keepRevision(documentId, current.title, current.body, at);
    const snippet = snippetOf(revision.body);
    q.update.run(revision.title, snippet, revision.body, at, documentId);
    return { id: documentId, title: revision.title, createdAt: current.created_at, updatedAt: at, snippet, body: revision.body };
  });

  /** Makes a revision the document's text again; the text it replaces is kept as a revision first. */
  function restoreRevision(documentId: string, revisionId: number): DocumentFull {
    requireString('A document id', documentId);
    if (!Number.isSafeInteger(revisionId)) throw invalidInput('A revision id must be an integer', revisionId);
    return restoreRevisionTransaction.immediate(documentId, revisionId);
  }

  return { create, get, list, search, save, trash, restore, listTrash, purgeTrash, listRevisions, getRevision, restoreRevision };
}
