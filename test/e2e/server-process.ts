/**
 * Inkling's browser mode as a real child process (`node bin/start.mjs --browser …`), so that stopping and
 * starting it again is a real restart. Every process started here is killed when the test process exits,
 * whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export interface InklingServer {
  /** The page to open, token included. */
  url: string;
  /** http://127.0.0.1:PORT */
  origin: string;
  pid: number;
  output(): string;
  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  repoRoot: string;
  dataDir: string;
  /** Null: no --model (the app starts on the model chosen in its model manager, or none). */
  modelDir: string | null;
  /** A built renderer to serve (INKLING_RENDERER_DIR). */
  rendererDir: string;
  /** Where net-audit.mjs writes what the server tried to reach. */
  netAuditFile: string;
  /** How long to wait for the URL line; a loaded machine compiles the TypeScript slowly. */
  timeoutMs?: number;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function startInkling(options: StartOptions): Promise<InklingServer> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    INKLING_RENDERER_DIR: options.rendererDir,
    INKLING_NET_AUDIT: options.netAuditFile,
  };
  // Flags decide; stray settings of whoever runs the tests must not.
  delete env.INKLING_MODEL;
  delete env.INKLING_DATA_DIR;
  delete env.INKLING_BACKEND;
  const child = spawn(
    process.execPath,
    [
      '--import',
      path.join(options.repoRoot, 'test', 'e2e', 'net-audit.mjs'),
      path.join(options.repoRoot, 'bin', 'start.mjs'),
      '--browser',
      '--port',
      '0',
      '--data',
      options.dataDir,
      ...(options.modelDir === null ? [] : ['--model', options.modelDir]),
    ],
    { cwd: options.repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));

  async function stop(graceMs = 20_000) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(killer);
    }
  }

  return new Promise((resolve, reject) => {
    const timeoutMs = options.timeoutMs ?? 90_000;
    const timer = setTimeout(() => {
      void stop(0);
      reject(new Error(`the server printed no URL within ${timeoutMs / 1000} s; output:\n${output}`));
    }, timeoutMs);
    const onData = () => {
      const url = output.split('\n').find((line) => line.startsWith('http://127.0.0.1:'));
      if (url === undefined) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({ url: url.trim(), origin: new URL(url.trim()).origin, pid: child.pid!, output: () => output, stop });
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before printing its URL; output:\n${output}`));
    });
  });
}
