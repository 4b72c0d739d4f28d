/**
 * Prompt templates (rewrite, translate) in SQLite. The built-in ones (worker/rewrite's BUILTIN_TEMPLATES) are
 * seeded when the store opens and kept in step with the app's defaults until the user changes them; a
 * changed built-in template can be reset, not deleted. Every template passes `validateTemplate` before it
 * is written.
 */
import { randomUUID } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { Template, TemplateInput } from '../ipc/contract.js';
import { BUILTIN_TEMPLATES, TemplateError, validateTemplate, type PromptTemplate } from '../../worker/rewrite/templates.js';
import { StoreError } from './errors.js';

export const TEMPLATE_LIMITS = { nameChars: 120, promptChars: 8000, noteChars: 1000, stopStrings: 8, stopChars: 64 } as const;

interface TemplateRow {
  id: string;
  name: string;
  kind: string;
  stop: string;
  note: string | null;
  builtin: number;
  modified: number;
  updated_at: number;
  prompt: string;
}

function fromRow(row: TemplateRow): Template {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind === 'translate' ? 'translate' : 'rewrite',
    prompt: row.prompt,
    stop: JSON.parse(row.stop) as string[],
    note: row.note,
    builtin: row.builtin === 1,
    modified: row.modified === 1,
    updatedAt: row.updated_at,
  };
}

/** The checks beyond `validateTemplate`'s: sizes, and a name to show. */
function checkInput(input: TemplateInput): PromptTemplate {
  let template: PromptTemplate;
  try {
    template = validateTemplate(input, 'the template');
  } catch (error) {
    if (error instanceof TemplateError) throw new StoreError('INVALID_INPUT', error.message);
    throw error;
  }
  const name = typeof input.name === 'string' ? input.name.trim() : '';
  if (name === '' || name.length > TEMPLATE_LIMITS.nameChars) {
    throw new StoreError('INVALID_INPUT', `the template needs a name of 1 to ${TEMPLATE_LIMITS.nameChars} characters`);
  }
  if (template.prompt.length > TEMPLATE_LIMITS.promptChars) {
    throw new StoreError('INVALID_INPUT', `the prompt is ${template.prompt.length} characters; at most ${TEMPLATE_LIMITS.promptChars} are allowed`);
  }
  if (template.stop.length > TEMPLATE_LIMITS.stopStrings || template.stop.some((s) => s.length > TEMPLATE_LIMITS.stopChars)) {
    throw new StoreError('INVALID_INPUT', `at most ${TEMPLATE_LIMITS.stopStrings} stop strings of at most ${TEMPLATE_LIMITS.stopChars} characters each`);
  }
  const note = input.note ?? null;
  if (note !== null && (typeof note !== 'string' || note.length > TEMPLATE_LIMITS.noteChars)) {
    throw new StoreError('INVALID_INPUT', `the note must be text of at most ${TEMPLATE_LIMITS.noteChars} characters`);
  }
  return { ...template, name, note: note ?? undefined };
}

export function createTemplateStore(db: Database, now: () => number) {
  const selectAll = db.prepare<[], TemplateRow>('SELECT * FROM templates ORDER BY builtin DESC, name COLLATE NOCASE, id');
  const selectOne = db.prepare<[string], TemplateRow>('SELECT * FROM templates WHERE id = ?');
  const insert = db.prepare<[string, string, string, string, string | null, number, number, number, string]>(
    'INSERT INTO templates (id, name, kind, stop, note, builtin, modified, updated_at, prompt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const update = db.prepare<[string, string, string, string | null, number, number, string, string]>(
    'UPDATE templates SET name = ?, kind = ?, stop = ?, note = ?, modified = ?, updated_at = ?, prompt = ? WHERE id = ?',
  );
  const remove = db.prepare<[string]>('DELETE FROM templates WHERE id = ?');

  const writeBuiltin = (template: PromptTemplate, existing: TemplateRow | undefined): void => {
    const row = [template.name, template.kind, JSON.stringify(template.stop), template.note ?? null] as const;
    if (existing === undefined) insert.run(template.id, ...row, 1, 0, now(), template.prompt);
    else update.run(...row, 0, now(), template.prompt, template.id);
  };

  /** Adds missing built-in templates and brings unchanged ones up to today's defaults. */
  const seed = db.transaction(() => {
    for (const template of BUILTIN_TEMPLATES) {
      const existing = selectOne.get(template.id);
      if (existing?.modified === 1) continue;
      const current = existing && fromRow(existing);
      const same =
        current !== undefined &&
        current.name === template.name &&
        current.kind === template.kind &&
        current.prompt === template.prompt &&
        current.note === (template.note ?? null) &&
        JSON.stringify(current.stop) === JSON.stringify(template.stop);
      if (!same) writeBuiltin(template, existing);
    }
  });

  function get(id: string): Template | null {
    const row = selectOne.get(id);
    return row ? fromRow(row) : null;
  }

  function mustGet(id: string): TemplateRow {
    const row = selectOne.get(id);
    if (!row) throw new StoreError('NOT_FOUND', `there is no template "${id.slice(0, 64)}"`);
    return row;
  }

  return {
    seed,
    list: (): Template[] => selectAll.all().map(fromRow),
    get,
    /** Creates a template (no id) or changes one; a built-in one becomes "modified". */
    save(input: TemplateInput): Template {
      const template = checkInput(input);
      const values = [template.name, template.kind, JSON.stringify(template.stop), template.note ?? null] as const;
      if (input.id === undefined) {
        const id = randomUUID();
        insert.run(id, ...values, 0, 0, now(), template.prompt);
        return get(id)!;
      }
      const existing = mustGet(input.id);
      update.run(...values, existing.builtin, now(), template.prompt, input.id);
      return get(input.id)!;
    },
    delete(id: string): void {
      const row = mustGet(id);
      if (row.builtin === 1) throw new StoreError('INVALID_INPUT', `"${row.name}" is built in: it can be reset to its default, not deleted`);
      remove.run(id);
    },
    reset(id: string): Template {
      const builtin = BUILTIN_TEMPLATES.find((t) => t.id === id);
      if (!builtin) throw new StoreError('NOT_FOUND', `there is no built-in template "${id.slice(0, 64)}" to reset`);
      writeBuiltin(builtin, selectOne.get(id));
      return get(id)!;
    },
  };
}

export type TemplateStore = ReturnType<typeof createTemplateStore>;
