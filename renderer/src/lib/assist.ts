/**
 * The assist side panel's logic, as plain data: the selection menu's entries, the streamed output of a
 * template run, where Insert puts it, and the template editor's stop-string field.
 */
import type { AssistEvent, Template, ToneResult } from '../../../main/ipc/contract.js';
import { CONTINUE_TEMPLATE_ID } from '../../../main/ipc/contract.js';
import type { KeyPress } from './editor-keys.js';

export interface MenuEntry {
  /** A template id, `CONTINUE_TEMPLATE_ID`, or "tone". */
  action: string;
  label: string;
  group: 'continue' | 'rewrite' | 'translate' | 'tone';
}

export const TONE_ACTION = 'tone';

/** "Continue", the rewrite templates, the translate templates, "Classify tone", in that order. */
export function menuEntries(templates: readonly Template[]): MenuEntry[] {
  const byKind = (kind: Template['kind']) =>
    templates.filter((t) => t.kind === kind).map((t): MenuEntry => ({ action: t.id, label: t.name, group: kind }));
  return [
    { action: CONTINUE_TEMPLATE_ID, label: 'Continue', group: 'continue' },
    ...byKind('rewrite'),
    ...byKind('translate'),
    { action: TONE_ACTION, label: 'Classify tone', group: 'tone' },
  ];
}

/** Ctrl+Shift+K (Cmd+Shift+K on a Mac) opens the menu on the selection. */
export function isAssistShortcut(e: KeyPress, isMac: boolean): boolean {
  const primary = isMac ? e.metaKey : e.ctrlKey;
  const other = isMac ? e.ctrlKey : e.metaKey;
  return primary && !other && e.shiftKey && !e.altKey && (e.code === 'KeyK' || e.key.toLowerCase() === 'k');
}

/** The text a run started from: where it was in the document. */
export interface SelectionRange {
  start: number;
  end: number;
  text: string;
}

/** "Classify tone" on a selection: scoring (result null), scored, or failed. */
export interface ToneView {
  text: string;
  result: ToneResult | null;
  error: string | null;
}

export type RunStatus = 'streaming' | 'done' | 'cancelled' | 'error';

export interface AssistRun {
  requestId: string;
  templateId: string;
  title: string;
  /** Continue inserts after the selection; a rewrite or translation replaces it. */
  mode: 'after' | 'replace';
  note: string | null;
  output: string;
  status: RunStatus;
  error: string | null;
  selection: SelectionRange;
}

export function startRun(requestId: string, template: Template | null, selection: SelectionRange): AssistRun {
  return {
    requestId,
    templateId: template?.id ?? CONTINUE_TEMPLATE_ID,
    title: template?.name ?? 'Continue',
    mode: template === null ? 'after' : 'replace',
    note: template?.note ?? null,
    output: '',
    status: 'streaming',
    error: null,
    selection,
  };
}

/** The run with one event applied; events of other runs (older, superseded) leave it as it is. */
export function applyAssistEvent(run: AssistRun, event: AssistEvent): AssistRun {
  if (event.requestId !== run.requestId || run.status !== 'streaming') return run;
  switch (event.type) {
    case 'delta':
      return { ...run, output: run.output + event.text };
    case 'done':
      return { ...run, output: event.output, status: 'done' };
    case 'cancelled':
      return { ...run, status: 'cancelled' };
    case 'error':
      return { ...run, status: 'error', error: event.error.message };
  }
}

export interface Insertion {
  start: number;
  end: number;
  text: string;
}

/**
 * Where Insert puts the output: over the selection (rewrite, translate) or right after it (continue). The
 * document may have changed since the run started: the selection is looked for where it was, then (once)
 * elsewhere; if it is gone, the error says so rather than overwriting the wrong text.
 */
export function planInsertion(documentText: string, run: AssistRun): Insertion | { error: string } {
  const { selection } = run;
  const output = run.mode === 'after' ? run.output : run.output.trim();
  if (output.trim() === '') return { error: 'There is no output to insert.' };
  let start = selection.start;
  if (documentText.slice(start, selection.end) !== selection.text) {
    const found = documentText.indexOf(selection.text);
    if (found < 0 || selection.text === '') return { error: 'The selected text has changed since; select it again and rerun.' };
    start = found;
  }
  const end = start + selection.text.length;
  return run.mode === 'after' ? { start: end, end, text: output } : { start, end, text: output };
}

/**
 * The stop strings as the editor shows them: one per line, with a line break written `\n` (the most
 * common stop string is a line break, which a text field cannot show).
 */
export function formatStopStrings(stop: readonly string[]): string {
  return stop.map((s) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t')).join('\n');
}

export function parseStopStrings(field: string): string[] {
  return field
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replace(/\\(\\|n|t)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : '\\')));
}

/** Checks the template editor's fields before saving (the server checks again); null when fine. */
export function templateProblem(name: string, prompt: string): string | null {
  if (name.trim() === '') return 'Give the template a name.';
  const slots = prompt.split('{text}').length - 1;
  if (slots !== 1) return `The prompt must contain {text} exactly once (where the selection goes); it has it ${slots} times.`;
  return null;
}

/** Tone scores, most probable first, as "62%" texts. */
export function toneRows(result: ToneResult): { label: string; percent: string; share: number }[] {
  return [...result.scores]
    .sort((a, b) => b.probability - a.probability)
    .map((s) => ({ label: s.label, percent: `${Math.round(s.probability * 100)}%`, share: s.probability }));
}

/** A translation template's note, plus the way to better output. */
export function isWeakTranslation(template: Pick<Template, 'kind'> | null): boolean {
  return template?.kind === 'translate';
}
