/**
 * Downloads GPT-2 checkpoints from the Hugging Face hub (`<base>/<repo>/resolve/<revision>/<file>`), only
 * when the user asks: progress events, resume after an interruption (HTTP Range into `<file>.part`), size
 * and checksum verification, cancel through an AbortSignal, and a plain message when the hub is unreachable.
 *
 * Checksums: for files kept in Git LFS (the weights) the hub answers the `resolve` URL with a redirect whose
 * `X-Linked-Etag` is the file's sha256 and `X-Linked-Size` its size; for small files kept in git, the ETag
 * is the git blob id (sha1 of "blob <size>\0" + content). Both are verified when present.
 *
 * Files go to `<target>.download/` and the folder is renamed to `<target>` only when every file is there
 * and verified, so an interrupted download is never mistaken for a model, and the next call resumes it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

export const DEFAULT_HUB = 'https://huggingface.co';

/** The GPT-2 checkpoints offered for download, by hub repository. */
export const GPT2_DOWNLOADS = {
  gpt2: { label: 'GPT-2 (124M)', approxBytes: 548e6 },
  'gpt2-medium': { label: 'GPT-2 Medium (355M)', approxBytes: 1.52e9 },
  'gpt2-large': { label: 'GPT-2 Large (774M)', approxBytes: 3.25e9 },
  'gpt2-xl': { label: 'GPT-2 XL (1.5B)', approxBytes: 6.43e9 },
} as const;
export type Gpt2Repo = keyof typeof GPT2_DOWNLOADS;

/** What a GPT-2 folder needs: the weights, the config, and GPT-2's tokenizer files. */
export const GPT2_FILES = ['config.json', 'vocab.json', 'merges.txt', 'model.safetensors'] as const;

export type DownloadErrorCode = 'offline' | 'not_found' | 'unauthorized' | 'http' | 'interrupted' | 'size_mismatch' | 'checksum' | 'cancelled';

export class DownloadError extends Error {
  override readonly name = 'DownloadError';
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type DownloadEvent =
  | { type: 'file-start'; file: string; size: number | null; resumeFrom: number }
  | { type: 'progress'; file: string; fileBytes: number; fileSize: number | null; bytes: number; totalBytes: number | null }
  | { type: 'retry'; file: string; attempt: number; from: number; reason: string }
  | { type: 'file-done'; file: string; size: number; verified: 'sha256' | 'git-sha1' | 'size' | 'none' }
  | { type: 'done'; dir: string; bytes: number };

export interface DownloadOptions {
  /** Hub address (default https://huggingface.co); a mirror or a test server. */
  base?: string;
  revision?: string;
  files?: readonly string[];
  signal?: AbortSignal;
  onEvent?: (event: DownloadEvent) => void;
  /** Times a dropped connection is resumed automatically before giving up (default 5). */
  retries?: number;
  /** Wait before retry n is n × this (default 1000 ms). */
  retryDelayMs?: number;
  /** Hugging Face access token, for gated or private repositories. */
  token?: string;
  fetch?: typeof fetch;
}

interface Remote {
  url: string;
  size: number | null;
  sha256: string | null;
  gitSha1: string | null;
}

/**
 * Downloads `repo`'s files into `target` (created; an existing `target` is left alone and reported).
 * Returns the folder. Interrupted downloads continue where they stopped when called again.
 */
export async function downloadModel(repo: string, target: string, options: DownloadOptions = {}): Promise<string> {
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) throw new DownloadError('not_found', `"${repo}" is not a hub repository name`);
  if (existsSync(path.join(target, 'config.json'))) throw new Error(`${target} already holds a model`);
  const base = (options.base ?? DEFAULT_HUB).replace(/\/+$/, '');
  const revision = options.revision ?? 'main';
  const files = options.files ?? GPT2_FILES;
  const work = `${target}.download`;
  await mkdir(work, { recursive: true });

  // Sizes first, so that progress can be shown against the whole download.
  const remotes = new Map<string, Remote>();
  for (const file of files) remotes.set(file, await describeRemote(`${base}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`, options));
  const sizes = [...remotes.values()].map((r) => r.size);
  const totalBytes = sizes.every((s) => s !== null) ? (sizes as number[]).reduce((a, b) => a + b, 0) : null;
  let doneBytes = 0;
  for (const file of files) {
    const remote = remotes.get(file)!;
    const size = await downloadFile(remote, path.join(work, file), file, options, (fileBytes) =>
      options.onEvent?.({ type: 'progress', file, fileBytes, fileSize: remote.size, bytes: doneBytes + fileBytes, totalBytes }),
    );
    doneBytes += size;
  }
  await rename(work, target);
  options.onEvent?.({ type: 'done', dir: target, bytes: doneBytes });
  return target;
}

function headers(options: DownloadOptions, extra: Record<string, string> = {}): Record<string, string> {
  return { 'user-agent': 'inkling', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...extra };
}

/** Size and checksums from a HEAD request that does not follow the hub's LFS redirect (its headers carry them). */
async function describeRemote(url: string, options: DownloadOptions): Promise<Remote> {
  const response = await request(url, { method: 'HEAD', redirect: 'manual', headers: headers(options) }, options);
  const linkedSize = response.headers.get('x-linked-size');
  const linkedEtag = cleanEtag(response.headers.get('x-linked-etag'));
  const etag = cleanEtag(response.headers.get('etag'));
  const length = response.headers.get('content-length');
  const size = linkedSize !== null ? Number(linkedSize) : response.status === 200 && length !== null ? Number(length) : null;
  const hex = (n: number, s: string | null) => (s !== null && new RegExp(`^[0-9a-f]{${n}}$`).test(s) ? s : null);
  return {
    url,
    size: size !== null && Number.isSafeInteger(size) ? size : null,
    sha256: hex(64, linkedEtag) ?? hex(64, etag),
    gitSha1: linkedEtag === null ? hex(40, etag) : null,
  };
}

function cleanEtag(value: string | null): string | null {
  return value === null ? null : value.replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
}

/** One fetch with the hub's failures turned into DownloadErrors (and redirects answered with 3xx kept). */
async function request(url: string, init: RequestInit, options: DownloadOptions): Promise<Response> {
  const doFetch = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(url, { ...init, signal: options.signal });
  } catch (error) {
    throw networkError(error, url, options);
  }
  if (response.ok || (response.status >= 300 && response.status < 400) || response.status === 416) return response;
  await response.body?.cancel();
  if (response.status === 404) throw new DownloadError('not_found', `${url}: not found (404) — check the model name`);
  if (response.status === 401 || response.status === 403) {
    throw new DownloadError('unauthorized', `${url}: access denied (${response.status}) — the repository may be gated or private`);
  }
  throw new DownloadError('http', `${url}: the server answered ${response.status} ${response.statusText}`);
}

function networkError(error: unknown, url: string, options: DownloadOptions): Error {
  if (options.signal?.aborted) return new DownloadError('cancelled', 'the download was cancelled; it resumes where it stopped when started again');
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? '';
  const host = new URL(url).host;
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)) {
    return new DownloadError('offline', `cannot reach ${host} (${code}): this computer seems to be offline, or the hub is unreachable`);
  }
  return new DownloadError('interrupted', `the connection to ${host} failed: ${cause?.message ?? (error as Error).message}`);
}

/** Downloads one file into `dest` through `dest.part`, resuming and retrying; returns its size. */
async function downloadFile(remote: Remote, dest: string, file: string, options: DownloadOptions, progress: (bytes: number) => void): Promise<number> {
  const part = `${dest}.part`;
  if (existsSync(dest)) {
    // Finished in an earlier, interrupted run of the whole download.
    const size = (await stat(dest)).size;
    progress(size);
    return size;
  }
  const retries = options.retries ?? 5;
  let offset = existsSync(part) ? (await stat(part)).size : 0;
  if (remote.size !== null && offset > remote.size) {
    await rm(part, { force: true });
    offset = 0;
  }
  options.onEvent?.({ type: 'file-start', file, size: remote.size, resumeFrom: offset });
  for (let attempt = 0; ; attempt++) {
    try {
      if (remote.size === null || offset < remote.size) offset = await fetchInto(remote, part, offset, options, progress);
      break;
    } catch (error) {
      if (!(error instanceof DownloadError) || error.code !== 'interrupted' || attempt >= retries) throw error;
      offset = existsSync(part) ? (await stat(part)).size : 0;
      options.onEvent?.({ type: 'retry', file, attempt: attempt + 1, from: offset, reason: error.message });
      await delay((attempt + 1) * (options.retryDelayMs ?? 1000), options.signal);
    }
  }
  progress(offset);
  const verified = await verify(remote, part, offset, file);
  await rename(part, dest);
  options.onEvent?.({ type: 'file-done', file, size: offset, verified });
  return offset;
}

/** Appends the bytes from `offset` on to `part`; returns the new size. Throws 'interrupted' when the connection drops. */
async function fetchInto(remote: Remote, part: string, offset: number, options: DownloadOptions, progress: (bytes: number) => void): Promise<number> {
  const response = await request(remote.url, { headers: headers(options, offset > 0 ? { range: `bytes=${offset}-` } : {}) }, options);
  if (response.status === 416) {
    // The range starts at the end: the part is already whole (its size is checked next).
    await response.body?.cancel();
    return offset;
  }
  if (offset > 0 && response.status !== 206) offset = 0; // the server ignored the range: start over
  const handle = await open(part, offset === 0 ? 'w' : 'a');
  let written = offset;
  try {
    if (!response.body) throw new DownloadError('interrupted', `${remote.url}: the response has no body`);
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      await handle.write(chunk);
      written += chunk.length;
      progress(written);
    }
  } catch (error) {
    if (error instanceof DownloadError) throw error;
    throw networkError(error, remote.url, options);
  } finally {
    await handle.close();
  }
  if (remote.size !== null && written < remote.size) {
    throw new DownloadError('interrupted', `${remote.url}: the connection closed after ${written} of ${remote.size} bytes`);
  }
  return written;
}

async function verify(remote: Remote, part: string, size: number, file: string): Promise<'sha256' | 'git-sha1' | 'size' | 'none'> {
  const fail = async (code: DownloadErrorCode, message: string): Promise<never> => {
    await rm(part, { force: true }); // a wrong file cannot be resumed into a right one
    throw new DownloadError(code, message);
  };
  if (remote.size !== null && size !== remote.size) {
    await fail('size_mismatch', `${file}: got ${size} bytes, the hub says ${remote.size}; the partial file was removed, try again`);
  }
  if (remote.sha256 !== null) {
    const got = await hashFile(part, 'sha256');
    if (got !== remote.sha256) await fail('checksum', `${file}: sha256 ${got} does not match the hub's ${remote.sha256}; the file was removed, try again`);
    return 'sha256';
  }
  if (remote.gitSha1 !== null) {
    const got = await hashFile(part, 'sha1', `blob ${size}\0`);
    if (got !== remote.gitSha1) await fail('checksum', `${file}: git blob id ${got} does not match the hub's ${remote.gitSha1}; the file was removed, try again`);
    return 'git-sha1';
  }
  return remote.size !== null ? 'size' : 'none';
}

async function hashFile(file: string, algorithm: 'sha256' | 'sha1', prefix = ''): Promise<string> {
  const hash = createHash(algorithm).update(prefix);
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new DownloadError('cancelled', 'the download was cancelled'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new DownloadError('cancelled', 'the download was cancelled; it resumes where it stopped when started again'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
