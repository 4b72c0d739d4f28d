/**
 * `inkling import SOURCE`: validates a GPT-2 checkpoint (a Hugging Face folder or a .safetensors file) and
 * copies it into a models folder. Nothing is copied when validation fails.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ModelFormatError } from '../../worker/model/errors.js';
import { copyImport, inspectImport, type ImportSummary } from '../models/import.js';
import { UsageError } from './args.js';
import { PROCESS_IO, type CliIo } from './task-io.js';

export const IMPORT_USAGE = `Usage: inkling import SOURCE [--to DIR] [--name NAME] [--check] [--force] [--json]

Imports a GPT-2 checkpoint: a Hugging Face folder (config.json, model.safetensors, tokenizer files) or a
single .safetensors file (its shape is read from the tensors). It is validated before anything is copied.

  --to DIR     the models folder (default: <data dir>/models, the data dir as the app uses it)
  --name NAME  folder name inside it (default: from the source)
  --check      validate and describe only; copy nothing
  --force      replace a model of the same name
  --json       one JSON object instead of text`;

const OPTIONS = {
  to: { type: 'string' },
  name: { type: 'string' },
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
    const summary = await inspectImport(positionals[0]);
    if (values.name !== undefined && !/^[A-Za-z0-9._-]+$/.test(values.name)) {
      throw new UsageError(`--name "${values.name}" may only hold letters, digits, '.', '_' and '-'`);
    }
    const modelsDir = path.resolve(values.to ?? (await defaultModelsDir()));
    const target = path.join(modelsDir, values.name ?? summary.suggestedName);
    if (!values.check) {
      let shown = -1;
      await copyImport(summary, target, {
        overwrite: values.force === true,
        onProgress: (copied, total) => {
          const percent = Math.floor((100 * copied) / Math.max(1, total));
          if (!values.json && percent >= shown + 10) {
            shown = percent;
            io.stderr.write(`copying… ${percent}%\n`);
          }
        },
      });
    }
    if (values.json) {
      const { files, ...rest } = summary;
      io.stdout.write(JSON.stringify({ ...rest, files: files.map((f) => f.name), imported: !values.check, target }) + '\n');
    } else {
      io.stdout.write(describe(summary) + (values.check ? 'valid; nothing copied (--check)\n' : `imported to ${target}\n`));
    }
    return 0;
  } catch (error) {
    const e = error as Error;
    if (verbose && e.stack) io.stderr.write(e.stack + '\n');
    else io.stderr.write(`inkling import: ${e.message.split('\n')[0]}\n`);
    return error instanceof UsageError ? 2 : error instanceof ModelFormatError ? 3 : 1;
  }
}

async function defaultModelsDir(): Promise<string> {
  // Imported lazily: main/app.ts pulls in the store, which this command otherwise does not need.
  const { defaultDataDir } = await import('../app.js');
  return path.join(process.env.INKLING_DATA_DIR || defaultDataDir(), 'models');
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

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
