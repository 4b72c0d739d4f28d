/**
 * `inkling import SOURCE`: validates a GPT-2 checkpoint (a Hugging Face folder or a .safetensors file) and
 * imports it into the user's data folder exactly as the app's model manager does — the same handler copies it
 * to `<data dir>/models/<id>/` and registers it with its sha256 — so that it is listed under Models in the app.
 * `--to DIR` only copies into a folder of your choice, unregistered. Nothing is copied when validation fails.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ModelFormatError } from '../../worker/model/errors.js';
import type { ModelProgressEvent } from '../ipc/contract.js';
import { copyImport, inspectImport, type ImportSummary } from '../models/import.js';
import { UsageError } from './args.js';
import { PROCESS_IO, type CliIo } from './task-io.js';
import { mib, reportRegistered, withUserModels } from './user-models.js';

export const IMPORT_USAGE = `Usage: inkling import SOURCE [--data-dir DIR] [--name NAME] [--activate] [--check] [--json]
       inkling import SOURCE --to DIR [--name NAME] [--force] [--json]

Imports a GPT-2 checkpoint: a Hugging Face folder (config.json, model.safetensors, tokenizer files) or a
single .safetensors file (its shape is read from the tensors). It is validated before anything is copied,
then copied into the data folder and registered there, as the app's "Import" does: it is listed under
Models in the app (restart or reopen the panel if the app is running).

  --data-dir DIR  the app's data folder (default: INKLING_DATA_DIR, else the per-user folder the app uses)
  --name NAME     the name shown in the app (default: from the source); its id is derived from it
  --activate      make it the model the app starts on
  --check         validate and describe only; copy nothing
  --to DIR        instead: copy into DIR/NAME only, without registering it in the app
  --force         with --to: replace a folder of the same name
  --json          one JSON object instead of text`;

const OPTIONS = {
  'data-dir': { type: 'string' },
  to: { type: 'string' },
  name: { type: 'string' },
  activate: { type: 'boolean' },
  check: { type: 'boolean' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Kept as a name of its own for callers; the shape is every command's. */
export type ImportIo = CliIo;

export async function importCommand(args: string[], io: ImportIo = PROCESS_IO): Promise<number> {
  const verbose = args.includes('--verbose');
  try {
    let parsed;
    try {
      parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      io.stdout.write(IMPORT_USAGE + '\n');
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('import needs one SOURCE: a GPT-2 folder or a .safetensors file');
    if (values.to !== undefined && (values['data-dir'] !== undefined || values.activate)) {
      throw new UsageError('--to copies without registering the model, so --data-dir and --activate do not apply');
    }
    if (values.to === undefined && values.force) {
      throw new UsageError('--force only applies with --to (in the data folder an import never replaces a model: it gets a free id)');
    }
    if (values['data-dir'] === '') throw new UsageError('--data-dir needs a folder');
    if (values.check) {
      const summary = await inspectImport(positionals[0]);
      io.stdout.write(values.json ? JSON.stringify({ ...summaryJson(summary), imported: false }) + '\n' : describe(summary) + 'valid; nothing copied (--check)\n');
      return 0;
    }
    if (values.to !== undefined) return await copyOnly(positionals[0], values.to, values, io);
    return await importIntoDataDir(positionals[0], values, io);
  } catch (error) {
    const e = error as Error & { code?: unknown };
    if (verbose && e.stack) io.stderr.write(e.stack + '\n');
    else io.stderr.write(`inkling import: ${e.message.split('\n')[0]}\n`);
    if (error instanceof UsageError) return 2;
    // A checkpoint that is not usable; the model manager reports the same refusal as INVALID_MODEL.
    return error instanceof ModelFormatError || e.code === 'INVALID_MODEL' ? 3 : 1;
  }
}

type ImportValues = { name?: string; activate?: boolean; force?: boolean; json?: boolean; 'data-dir'?: string };

/** "copying… 40%" on stderr in steps of 10% (multi-GB imports take a while); nothing with --json. */
function progressPrinter(io: CliIo, json: boolean | undefined): (copied: number, total: number) => void {
  let shown = -1;
  return (copied, total) => {
    const percent = Math.floor((100 * copied) / Math.max(1, total));
    if (!json && percent >= shown + 10) {
      shown = percent;
      io.stderr.write(`copying… ${percent}%\n`);
    }
  };
}

/**
 * Through the model manager's own `importModel` on the data folder's store: one code path for the app and the
 * CLI (validation, copy into models/<id>/, the registry row with its sha256).
 */
async function importIntoDataDir(source: string, values: ImportValues, io: CliIo): Promise<number> {
  const progress = progressPrinter(io, values.json);
  const emit = (event: ModelProgressEvent) => {
    if (event.kind === 'import' && event.state !== 'error' && event.totalBytes !== null && event.bytes > 0) progress(event.bytes, event.totalBytes);
  };
  return withUserModels({ command: 'import', dataDir: values['data-dir'], emit }, io, async (user) => {
    const info = await user.handlers.importModel(source, values.name);
    reportRegistered(user, info, { activate: values.activate, json: values.json }, io);
    return 0;
  });
}

/** `--to DIR`: the checked files copied into DIR/NAME, not registered anywhere. */
async function copyOnly(source: string, to: string, values: ImportValues, io: CliIo): Promise<number> {
  const summary = await inspectImport(source);
  if (values.name !== undefined && !/^[A-Za-z0-9._-]+$/.test(values.name)) {
    throw new UsageError(`--name "${values.name}" may only hold letters, digits, '.', '_' and '-'`);
  }
  const target = path.join(path.resolve(to), values.name ?? summary.suggestedName);
  await copyImport(summary, target, { overwrite: values.force === true, onProgress: progressPrinter(io, values.json) });
  io.stdout.write(values.json ? JSON.stringify({ ...summaryJson(summary), imported: true, registered: false, target }) + '\n' : describe(summary) + `copied to ${target} (not registered in the app)\n`);
  return 0;
}

function summaryJson(summary: ImportSummary): Record<string, unknown> {
  const { files, ...rest } = summary;
  return { ...rest, files: files.map((f) => f.name) };
}

function describe(s: ImportSummary): string {
  const c = s.config;
  return (
    [
      `source:     ${s.source} (${s.kind})`,
      `model:      GPT-2${s.releasedAs ? ` (${s.releasedAs})` : ''}: ${c.nLayer} layers, width ${c.nEmbd}, ${c.nHead} heads, context ${c.nPositions}, vocabulary ${c.vocabSize}`,
      `parameters: ${(s.parameters / 1e6).toFixed(1)}M, ${s.dtypes.join('/')}; ${mib(s.sizeBytes)} on disk, about ${mib(s.memoryBytes)} in memory`,
      `tokenizer:  ${s.tokenizerFiles.length > 0 ? s.tokenizerFiles.join(', ') : "none (GPT-2's is used)"}`,
    ].join('\n') + '\n'
  );
}
