/** `inkling download gpt2|gpt2-medium|gpt2-large|gpt2-xl`: fetches a GPT-2 checkpoint from the Hugging Face hub. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_HUB, DownloadError, GPT2_DOWNLOADS, downloadModel } from '../models/download.js';
import { UsageError } from './args.js';
import { PROCESS_IO, type CliIo } from './task-io.js';

export const DOWNLOAD_USAGE = `Usage: inkling download MODEL [--to DIR] [--base URL] [--json]

Downloads a GPT-2 checkpoint from the Hugging Face hub into DIR/MODEL (default DIR: <data dir>/models).
MODEL is one of ${Object.keys(GPT2_DOWNLOADS).join(', ')}. An interrupted download continues when run again.

  --base URL   the hub (default ${DEFAULT_HUB}, or HF_ENDPOINT)
  --json       progress and the result as JSON lines`;

const OPTIONS = {
  to: { type: 'string' },
  base: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Kept as a name of its own for callers; the shape is every command's. */
export type DownloadIo = CliIo;

export async function downloadCommand(args: string[], io: DownloadIo = PROCESS_IO): Promise<number> {
  const verbose = args.includes('--verbose');
  const aborter = new AbortController();
  io.signal?.addEventListener('abort', () => aborter.abort(), { once: true });
  const onSigint = () => aborter.abort();
  process.on('SIGINT', onSigint);
  try {
    let parsed;
    try {
      parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      io.stdout.write(DOWNLOAD_USAGE + '\n');
      return 0;
    }
    const repo = positionals[0];
    if (positionals.length !== 1 || !(repo in GPT2_DOWNLOADS)) {
      throw new UsageError(`download needs one model name: ${Object.keys(GPT2_DOWNLOADS).join(', ')}`);
    }
    const modelsDir = path.resolve(values.to ?? (await defaultModelsDir()));
    let shown = -1;
    const dir = await downloadModel(repo, path.join(modelsDir, repo), {
      base: values.base ?? process.env.HF_ENDPOINT ?? DEFAULT_HUB,
      signal: aborter.signal,
      onEvent: (e) => {
        if (values.json) {
          if (e.type !== 'progress') io.stdout.write(JSON.stringify({ event: e.type, ...e, type: undefined }) + '\n');
          return;
        }
        if (e.type === 'progress' && e.totalBytes) {
          const percent = Math.floor((100 * e.bytes) / e.totalBytes);
          if (percent >= shown + 5) {
            shown = percent;
            io.stderr.write(`downloading ${repo}… ${percent}% (${mib(e.bytes)} of ${mib(e.totalBytes)})\n`);
          }
        } else if (e.type === 'retry') {
          io.stderr.write(`connection lost (${e.reason}); resuming ${e.file} from byte ${e.from}\n`);
        } else if (e.type === 'file-done') {
          io.stderr.write(`${e.file}: ${mib(e.size)}, verified by ${e.verified}\n`);
        }
      },
    });
    if (!values.json) io.stdout.write(`downloaded ${GPT2_DOWNLOADS[repo as keyof typeof GPT2_DOWNLOADS].label} to ${dir}\n`);
    return 0;
  } catch (error) {
    const e = error as Error;
    if (verbose && e.stack) io.stderr.write(e.stack + '\n');
    else io.stderr.write(`inkling download: ${e.message.split('\n')[0]}\n`);
    if (error instanceof DownloadError && error.code === 'cancelled') return 130;
    return error instanceof UsageError ? 2 : 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

async function defaultModelsDir(): Promise<string> {
  // Imported lazily: main/app.ts pulls in the store, which this command otherwise does not need.
  const { defaultDataDir } = await import('../app.js');
  return path.join(process.env.INKLING_DATA_DIR || defaultDataDir(), 'models');
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
