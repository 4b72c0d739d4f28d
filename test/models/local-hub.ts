/**
 * A stand-in for the Hugging Face hub on 127.0.0.1: the tiny fixture served as `gpt2` in the hub's layout
 * (`/gpt2/resolve/main/<file>`, resumable with Range), so that download tests contact no real host.
 */
import { after, before } from 'node:test';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gpt2VocabMerges } from '../../worker/tokenizer/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tinyGpt2 = path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2');

const gpt2 = gpt2VocabMerges();
/** The files of the hub's gpt2 repository: the tiny fixture's weights with GPT-2's own tokenizer. */
export const HUB_FILES: Record<string, Buffer> = {
  'config.json': readFileSync(path.join(tinyGpt2, 'config.json')),
  'model.safetensors': readFileSync(path.join(tinyGpt2, 'model.safetensors')),
  'vocab.json': Buffer.from(JSON.stringify(gpt2.vocab)),
  'merges.txt': Buffer.from(['#version: 0.2', ...gpt2.merges].join('\n') + '\n'),
};

export interface LocalHub {
  /** Set once the test file's `before` hooks have run. */
  url: string;
  /** The Range headers of the GET requests, to see a download resume. */
  ranges: string[];
  /** While set, the weights are sent this slowly (bytes per 20 ms), so a cancel lands mid-file. */
  throttleBytes: number | null;
}

/** Starts the hub before the file's tests and stops it after them. */
export function useLocalHub(): LocalHub {
  const hub: LocalHub = { url: '', ranges: [], throttleBytes: null };
  const server = http.createServer((req, res) => {
    const match = /^\/gpt2\/resolve\/main\/(.+)$/.exec(new URL(req.url!, 'http://x').pathname);
    const body = match ? HUB_FILES[match[1]!] : undefined;
    if (body === undefined) return void res.writeHead(404).end('Repository not found');
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (req.headers.range && req.method === 'GET') hub.ranges.push(req.headers.range);
    const start = range ? Number(range[1]) : 0;
    res.writeHead(range ? 206 : 200, {
      'content-length': body.length - start,
      ...(range ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    if (req.method === 'HEAD') return void res.end();
    if (hub.throttleBytes === null || match![1] !== 'model.safetensors') return void res.end(body.subarray(start));
    let at = start;
    const step = hub.throttleBytes;
    const timer = setInterval(() => {
      if (res.destroyed || at >= body.length) {
        clearInterval(timer);
        res.end();
        return;
      }
      res.write(body.subarray(at, at + step));
      at += step;
    }, 20);
    res.on('close', () => clearInterval(timer));
  });
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return hub;
}
