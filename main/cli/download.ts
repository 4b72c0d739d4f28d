/**
 * `inkling download gpt2|gpt2-medium|gpt2-large|gpt2-xl`: fetches a GPT-2 checkpoint from the Hugging Face hub
 * and registers it in the user's data folder exactly as the app's Models panel does — the same handler
 * downloads it to `<data dir>/models/hub-<model>/`, checks it and records it with its sha256 — so that it is
 * listed under Models in the app. `--to DIR` only downloads into a folder of your choice, unregistered.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ModelInfo, ModelProgressEvent } from '../ipc/contract.js';
import { DEFAULT_HUB, DownloadError, GPT2_DOWNLOADS, downloadModel, type DownloadEvent, type Gpt2Repo } from '../models/download.js';
import { UsageError } from './args.js';
import { PROCESS_IO, type CliIo } from './task-io.js';
import { mib, reportRegistered, withUserModels } from './user-models.js';

export const DOWNLOAD_USAGE = `Usage: inkling download MODEL [--data-dir DIR] [--activate] [--base URL] [--json]
       inkling download MODEL --to DIR [--base URL] [--json]

Downloads a GPT-2 checkpoint from the Hugging Face hub and adds it to the app's models, as the app's
"Download" under Models does: it is listed there (restart or reopen the panel if the app is running).
MODEL is one of ${Object.keys(GPT2_DOWNLOADS).join(', ')}. An interrupted download continues when run again.

  --data-dir DIR  the app's data folder (default: INKLING_DATA_DIR, else the per-user folder the app uses)
  --activate      make it the model the app starts on
  --to DIR        instead: download into DIR/MODEL only, without registering it in the app
  --base URL      the hub (default: INKLING_HUB_URL, else HF_ENDPOINT, else ${DEFAULT_HUB})
  --json          one JSON object instead of text (no progress lines)`;

const OPTIONS = {
  'data-dir': { type: 'string' },
  activate: { type: 'boolean' },
  to: { type: 'string' },
  base: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Kept as a name of its own for callers; the shape is every command's. */
export type DownloadIo = CliIo;

type DownloadValues = { 'data-dir'?: string; activate?: boolean; to?: string; base?: string; json?: boolean };

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
    if (values.to !== undefined && (values['data-dir'] !== undefined || values.activate)) {
      throw new UsageError('--to downloads without registering the model, so --data-dir and --activate do not apply');
    }
    if (values.to === '') throw new UsageError('--to needs a folder');
    if (values['data-dir'] === '') throw new UsageError('--data-dir needs a folder');
    const base = values.base || process.env.INKLING_HUB_URL || process.env.HF_ENDPOINT || DEFAULT_HUB;
    if (values.to !== undefined) return await downloadOnly(repo as Gpt2Repo, values.to, base, values, aborter.signal, io);
    return await downloadIntoDataDir(repo as Gpt2Repo, base, values, aborter.signal, io);
  } catch (error) {
    const e = error as Error & { code?: unknown };
    if (verbose && e.stack) io.stderr.write(e.stack + '\n');
    else io.stderr.write(`inkling download: ${e.message.split('\n')[0]}\n`);
    // The model manager reports a cancelled download as DOWNLOAD_CANCELLED, the bare download as a DownloadError.
    if ((error instanceof DownloadError && error.code === 'cancelled') || e.code === 'DOWNLOAD_CANCELLED') return 130;
    return error instanceof UsageError ? 2 : 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** "downloading gpt2… 40% (…)" on stderr in steps of 5% (GBs take a while); nothing with --json. */
function progressPrinter(repo: string, io: CliIo, json: boolean | undefined): (bytes: number, totalBytes: number | null) => void {
  let shown = -1;
  return (bytes, totalBytes) => {
    if (json || !totalBytes) return;
    const percent = Math.floor((100 * bytes) / totalBytes);
    if (percent >= shown + 5) {
      shown = percent;
      io.stderr.write(`downloading ${repo}… ${percent}% (${mib(bytes)} of ${mib(totalBytes)})\n`);
    }
  };
}

/**
 * Through the model manager's own `downloadModel` on the data folder's store: one code path for the app and
 * the CLI (the resumable folder models/hub-<model>/, the check of the files, the registry row with its sha256).
 */
async function downloadIntoDataDir(repo: Gpt2Repo, base: string, values: DownloadValues, signal: AbortSignal, io: CliIo): Promise<number> {
  const progress = progressPrinter(repo, io, values.json);
  const emit = (event: ModelProgressEvent) => {
    if (event.kind === 'download' && event.state === 'running') progress(event.bytes, event.totalBytes);
  };
  return withUserModels({ command: 'download', dataDir: values['data-dir'], hubBase: base, emit }, io, async (user) => {
    // The handler registers its job before its first await, so a cancel from here on reaches it.
    const pending = user.handlers.downloadModel(repo);
    const cancel = () => void user.handlers.cancelDownload(repo);
    signal.addEventListener('abort', cancel, { once: true });
    if (signal.aborted) cancel();
    let info: ModelInfo;
    try {
      info = await pending;
    } finally {
      signal.removeEventListener('abort', cancel);
    }
    reportRegistered(user, info, { activate: values.activate, json: values.json, fields: { repo } }, io);
    return 0;
  });
}

/** `--to DIR`: the hub's files in DIR/MODEL, verified but not registered anywhere. */
async function downloadOnly(repo: Gpt2Repo, to: string, base: string, values: DownloadValues, signal: AbortSignal, io: CliIo): Promise<number> {
  const progress = progressPrinter(repo, io, values.json);
  let bytes = 0;
  const dir = await downloadModel(repo, path.join(path.resolve(to), repo), {
    base,
    signal,
    onEvent: (e: DownloadEvent) => {
      if (e.type === 'progress') progress(e.bytes, e.totalBytes);
      else if (e.type === 'done') bytes = e.bytes;
      if (values.json) return;
      if (e.type === 'retry') io.stderr.write(`connection lost (${e.reason}); resuming ${e.file} from byte ${e.from}\n`);
      else if (e.type === 'file-done') io.stderr.write(`${e.file}: ${mib(e.size)}, verified by ${e.verified}\n`);
    },
  });
  const label = GPT2_DOWNLOADS[repo].label;
  if (values.json) io.stdout.write(JSON.stringify({ repo, name: label, downloaded: true, registered: false, target: dir, bytes }) + '\n');
  else io.stdout.write(`downloaded ${label} to ${dir} (not registered in the app)\n`);
  return 0;
}
