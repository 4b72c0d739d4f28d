// Shared by the package tests: building into a temporary folder, running built code with plain `node` (no
// TypeScript loader, guarded), and talking to browser mode over its WebSocket API.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, lstatSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import type { CompletionEvent, EngineStatus, WireMessage, WireRequest } from '../../main/ipc/contract.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
export const tinyModel = path.join(sharedDir, 'fixtures', 'tiny-gpt2');
export const noTypeScriptGuard = fileURLToPath(new URL('./guard/no-typescript.mjs', import.meta.url));

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `inkling-${prefix}-`));
}

/** Runs a command to its end; rejects with its output when it fails or outlives `timeoutMs`. */
export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`${path.basename(command)} ${args.join(' ')} failed (${signal ?? code}):\n${output}`));
    });
  });
}

/** `npm run build` into `<dir>/dist`, through the build script itself. */
export function buildInto(dir: string): Promise<string> {
  return run(process.execPath, [path.join(repoRoot, 'scripts', 'build.mjs'), '--out', path.join(dir, 'dist')]);
}

/**
 * Makes `dir` an app root for a build in `dir/dist`: package.json (its "type": "module" makes the .js files ES
 * modules) and the checkout's node_modules.
 */
export function makeAppRoot(dir: string): void {
  copyFileSync(path.join(repoRoot, 'package.json'), path.join(dir, 'package.json'));
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
}

/** Every file under `dir`, as paths relative to it with forward slashes. */
export function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    return entry.isDirectory() ? listFiles(dir, relative) : [relative];
  });
}

/** Bytes in the files under `dir` (links not followed). */
export function dirBytes(dir: string): number {
  return listFiles(dir).reduce((sum, file) => sum + lstatSync(path.join(dir, file)).size, 0);
}

export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** This environment minus everything that could slip a loader in or point the app elsewhere. */
export function plainNodeEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key === 'NODE_OPTIONS' || key.startsWith('TSX_') || key.startsWith('INKLING_')) delete env[key];
  }
  return { ...env, ...extra };
}

export interface BrowserMode {
  url: string;
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts built browser mode: `node --import <guard> <entry> --port 0 ...args` with a clean environment,
 * and resolves once it prints its URL. No tsx: a TypeScript import anywhere (engine thread included) kills it.
 */
export function startBuiltBrowserMode(
  entry: string,
  args: string[],
  options: { cwd: string; loadLog?: string; env?: NodeJS.ProcessEnv },
): Promise<BrowserMode> {
  const env = plainNodeEnv({ ...options.env, ...(options.loadLog ? { INKLING_LOAD_LOG: options.loadLog } : {}) });
  const child = spawn(process.execPath, ['--import', noTypeScriptGuard, entry, '--port', '0', ...args], {
    cwd: options.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no URL within 60 s; output:\n${output}`));
    }, 60_000);
    const poll = setInterval(() => {
      const url = output.split('\n').find((line) => line.startsWith('http://127.0.0.1:'));
      if (url === undefined) return;
      clearInterval(poll);
      clearTimeout(timer);
      resolve({
        url: url.trim(),
        output: () => output,
        async stop() {
          child.kill('SIGTERM');
          return exited;
        },
      });
    }, 50);
    void exited.then((code) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`browser mode exited (${code}) before printing its URL; output:\n${output}`));
    });
  });
}

/** What the built engine reported in `runBuiltEngine`. */
export interface BuiltEngineReport {
  backend: string;
  threads: number;
  precision: string;
  threadsNote: string | null;
  precisionNote: string | null;
  /** Why the prompt's products did not run on the native kernels (null: they did). */
  nativeKernelsNote: string | null;
  finite: boolean;
}

/**
 * A random GPT-2 whose width is a multiple of 32 (so that every product the fast precision splits between the
 * threads holds whole groups of 32 inputs; the tiny fixture's width, 32, halves to 16): the int8 kernels run
 * on both threads.
 */
export const FAST_TWO_THREAD_CONFIG = { nLayer: 2, nEmbd: 64, nHead: 2, vocabSize: 256, nPositions: 32 };

/**
 * Runs the compiled engine under `workerDir` (a build's dist/worker) with plain `node` and the guard: a random
 * model with `{ threads: 2, precision: 'fast' }` on the wasm backend, a prompt and two single-token steps
 * (each product handed to the partner thread, int8 on both sides; the prompt's products on the native kernels
 * where they are built). Resolves with what the model reported.
 */
export async function runBuiltEngine(
  workerDir: string,
  options: { cwd: string; loadLog?: string; env?: NodeJS.ProcessEnv },
): Promise<BuiltEngineReport> {
  const url = (file: string) => JSON.stringify(pathToFileURL(path.join(workerDir, file)).href);
  const script = `
    const { initBackend } = await import(${url('backend.js')});
    const { createRandomModel } = await import(${url('model/random.js')});
    const selection = await initBackend('wasm');
    const model = createRandomModel(${JSON.stringify(FAST_TWO_THREAD_CONFIG)}, 7, { threads: 2, precision: 'fast' });
    await model.threadsReady;
    const cache = model.createCache(1);
    let finite = true;
    for (const tokens of [[1, 2, 3, 4, 5, 6], [4], [5]]) {
      const logits = model.forward([tokens], cache);
      finite &&= Array.from(logits.dataSync()).every(Number.isFinite);
      logits.dispose();
    }
    cache.dispose();
    const { threads, precision, threadsNote, precisionNote, nativeKernelsNote } = model;
    model.dispose();
    console.log(JSON.stringify({ backend: selection.name, threads, precision, threadsNote, precisionNote, nativeKernelsNote, finite }));
  `;
  const env = plainNodeEnv({ ...options.env, ...(options.loadLog ? { INKLING_LOAD_LOG: options.loadLog } : {}) });
  // A file, not `-e`: worker threads inherit the process's execArgv, and `--input-type` makes them refuse to start.
  const probe = path.join(options.cwd, 'built-engine-probe.mjs');
  writeFileSync(probe, script);
  const output = await run(process.execPath, ['--import', noTypeScriptGuard, probe], {
    cwd: options.cwd,
    env,
    timeoutMs: 120_000,
  });
  const last = output.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as BuiltEngineReport;
  } catch {
    throw new Error(`the built engine printed no report; output:\n${output}`);
  }
}

/** One WebSocket connection to browser mode's API. */
export class ApiClient {
  private readonly messages: WireMessage[] = [];
  private waiters: Array<() => void> = [];
  private nextId = 1;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()) as WireMessage);
      const waiters = this.waiters;
      this.waiters = [];
      waiters.forEach((wake) => wake());
    });
  }

  static connect(pageUrl: string): Promise<ApiClient> {
    const page = new URL(pageUrl);
    const ws = new WebSocket(`ws://${page.host}/api?token=${page.searchParams.get('token')}`, { origin: page.origin });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new ApiClient(ws)));
      ws.once('error', reject);
    });
  }

  private async until<T extends WireMessage>(match: (m: WireMessage) => m is T, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 250);
      });
    }
  }

  /** Calls an API method; resolves with its value, rejects with its error. */
  async invoke<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ kind: 'invoke', id, method, args } as WireRequest));
    const reply = await this.until((m): m is Extract<WireMessage, { kind: 'result' }> => m.kind === 'result' && m.id === id);
    if (!reply.ok) throw new Error(`${method} failed: ${reply.error.code}: ${reply.error.message}`);
    return reply.value as T;
  }

  /** The completion event of `requestId` that ends it (done, cancelled or error). */
  completionEnd(requestId: string): Promise<CompletionEvent> {
    return this.until((m): m is Extract<WireMessage, { kind: 'event' }> => {
      if (m.kind !== 'event' || m.event !== 'completion') return false;
      const event = m.payload as CompletionEvent;
      return event.requestId === requestId && event.type !== 'delta';
    }).then((m) => m.payload as CompletionEvent);
  }

  close(): void {
    this.ws.close();
  }
}

/** Polls the engine until it has loaded its model (or failed). */
export async function engineSettled(client: ApiClient, timeoutMs = 60_000): Promise<EngineStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await client.invoke<EngineStatus>('getEngineStatus');
    if (status.state === 'ready' || status.state === 'error') return status;
    if (Date.now() > deadline) throw new Error(`the engine is still '${status.state}' after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * The whole path a suggestion takes: the page, the API, a document, and a completion through the real
 * engine worker with the tiny model. Returns the engine status, for assertions on the backend.
 */
export async function checkBrowserModeRoundTrip(url: string): Promise<EngineStatus> {
  const page = await fetch(url);
  assert.equal(page.status, 200, 'the page is served');
  const html = await page.text();
  const script = /<script[^>]+src="\.?\/?(assets\/[^"]+\.js)"/.exec(html);
  assert.ok(script, `the page loads the built renderer script:\n${html}`);
  const asset = await fetch(new URL(script[1]!, url));
  assert.equal(asset.status, 200, `the renderer script ${script[1]} is served`);
  await asset.arrayBuffer();

  const client = await ApiClient.connect(url);
  try {
    const status = await engineSettled(client);
    assert.equal(status.state, 'ready', `the engine loaded the model: ${JSON.stringify(status)}`);
    const doc = await client.invoke<{ id: string }>('createDocument', 'Packaged');
    const requestId = 'package-test-1';
    const ended = client.completionEnd(requestId);
    await client.invoke('complete', {
      requestId,
      documentId: doc.id,
      prefix: 'Hello, my dog is',
      decoding: { doSample: false, maxNewTokens: 4 },
      stopAtSentenceEnd: false,
    });
    const end = await ended;
    assert.equal(end.type, 'done', `the completion finished: ${JSON.stringify(end)}`);
    if (end.type === 'done') {
      assert.equal(end.alternatives.length, 1);
      assert.ok(end.alternatives[0]!.length > 0, 'the model produced text');
    }
    return status;
  } finally {
    client.close();
  }
}
