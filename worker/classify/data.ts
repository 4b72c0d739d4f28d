/**
 * Labelled texts for training a classifier: read from CSV (with a header row) or JSON Lines, and split
 * into training and held-out parts label by label.
 */
import { TrainingRng, deriveSeed, permutation } from '../train/rng.js';

export interface LabelledText {
  text: string;
  label: string;
}

export interface FieldNames {
  /** Column / key holding the text. Default "text". */
  textField?: string;
  /** Column / key holding the label. Default "label". */
  labelField?: string;
}

export class LabelledDataError extends Error {
  override name = 'LabelledDataError';
}

export type LabelledFormat = 'csv' | 'jsonl';

/** The format a file name implies (.csv, .jsonl/.ndjson/.json), or null. */
export function formatOfFile(name: string): LabelledFormat | null {
  const lower = name.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson') || lower.endsWith('.json')) return 'jsonl';
  return null;
}

/** Every record of `content` as a labelled text; `source` names the file in errors. */
export function parseLabelledData(content: string, format: LabelledFormat, fields: FieldNames = {}, source = 'the data'): LabelledText[] {
  const textField = fields.textField ?? 'text';
  const labelField = fields.labelField ?? 'label';
  const records = format === 'csv' ? csvRecords(content, source) : jsonlRecords(content, source);
  const out: LabelledText[] = [];
  for (const { where, record } of records) {
    const text = record[textField];
    const label = record[labelField];
    if (text === undefined) throw new LabelledDataError(`${source} ${where}: no "${textField}" field (choose it with --text-field)`);
    if (label === undefined) throw new LabelledDataError(`${source} ${where}: no "${labelField}" field (choose it with --label-field)`);
    const labelText = String(label).trim();
    if (labelText === '') throw new LabelledDataError(`${source} ${where}: the label is empty`);
    out.push({ text: String(text), label: labelText });
  }
  if (out.length === 0) throw new LabelledDataError(`${source} holds no labelled texts`);
  return out;
}

type SourcedRecord = { where: string; record: Record<string, unknown> };

function jsonlRecords(content: string, source: string): SourcedRecord[] {
  const out: SourcedRecord[] = [];
  content.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new LabelledDataError(`${source} line ${i + 1}: not valid JSON (${(error as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new LabelledDataError(`${source} line ${i + 1}: expected a JSON object`);
    }
    out.push({ where: `line ${i + 1}`, record: value as Record<string, unknown> });
  });
  return out;
}

/**
 * RFC 4180 CSV: quoted fields may hold commas, newlines and doubled quotes. Hand-written because no CSV
 * package is among the project's dependencies and the format needs only this much.
 */
export function parseCsv(content: string, source = 'the CSV'): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = content.charCodeAt(0) === 0xfeff ? 1 : 0; // a byte-order mark some spreadsheets write
  const endField = () => {
    row.push(field);
    field = '';
  };
  const endRow = () => {
    endField();
    if (!(row.length === 1 && row[0] === '')) rows.push(row);
    row = [];
  };
  for (; i < content.length; i++) {
    const c = content[i];
    if (quoted) {
      if (c === '"') {
        if (content[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
    } else if (c === ',') {
      endField();
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && content[i + 1] === '\n') i++;
      endRow();
    } else {
      field += c;
    }
  }
  if (quoted) throw new LabelledDataError(`${source}: a quoted field is not closed`);
  if (field !== '' || row.length > 0) endRow();
  return rows;
}

function csvRecords(content: string, source: string): SourcedRecord[] {
  const rows = parseCsv(content, source);
  if (rows.length === 0) throw new LabelledDataError(`${source} is empty`);
  const header = rows[0].map((h) => h.trim());
  return rows.slice(1).map((cells, i) => {
    if (cells.length !== header.length) {
      throw new LabelledDataError(`${source} record ${i + 1}: ${cells.length} fields, the header has ${header.length}`);
    }
    return { where: `record ${i + 1}`, record: Object.fromEntries(header.map((h, k) => [h, cells[k]])) };
  });
}

/** Labels in order of first appearance. */
export function labelsOf(examples: readonly LabelledText[]): string[] {
  return [...new Set(examples.map((e) => e.label))];
}

/**
 * A stratified split: each label gives `fraction` of its examples (rounded, at least one when it has two
 * or more) to the held-out part, chosen by `seed`.
 */
export function splitHeldOut(
  examples: readonly LabelledText[],
  fraction: number,
  seed: number,
): { train: LabelledText[]; heldOut: LabelledText[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new LabelledDataError(`the held-out fraction must be in [0, 1), got ${fraction}`);
  const train: LabelledText[] = [];
  const heldOut: LabelledText[] = [];
  labelsOf(examples).forEach((label, k) => {
    const members = examples.filter((e) => e.label === label);
    const order = permutation(members.length, new TrainingRng(deriveSeed(seed, k)));
    let count = Math.round(members.length * fraction);
    if (fraction > 0 && count === 0 && members.length >= 2) count = 1;
    order.forEach((idx, j) => (j < count ? heldOut : train).push(members[idx]));
  });
  const mix = (list: LabelledText[], salt: number) => permutation(list.length, new TrainingRng(deriveSeed(seed, salt))).map((i) => list[i]);
  return { train: mix(train, 0x7a1), heldOut: mix(heldOut, 0x4e1d) };
}
