// The hub download against a local server on 127.0.0.1 that serves the tiny fixture in the hub's layout:
// small files straight from `resolve` (ETag = git blob id), the weights through an LFS-style redirect whose
// X-Linked-Size / X-Linked-Etag carry size and sha256. No real host is contacted.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { DownloadError, downloadModel, type DownloadEvent } from '../../main/models/download.js';
import { downloadCommand } from '../../main/cli/download.js';
import { inspectImport } from '../../main/models/import.js';
import { HUB_FILES as FILES } from './local-hub.js';
import { tempDir } from '../train/helpers.js';

const LFS = new Set(['model.safetensors']);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

/** What the next requests should suffer, and what the server saw. */
const server = {
  dropAfter: null as number | null, // bytes of the weights to send before cutting the connection (once)
  dropEvery: false, // cut every weights response (a connection that never holds)
  wrongSha: false,
  ranges: [] as string[],
};
let base = '';
let httpServer: http.Server;

before(async () => {
  httpServer = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const cdn = /^\/cdn\/(.+)$/.exec(url.pathname);
    const hub = /^\/([\w.-]+)\/resolve\/main\/(.+)$/.exec(url.pathname);
    if (hub && hub[1] === 'gpt2' && FILES[hub[2]]) {
      const body = FILES[hub[2]];
      if (LFS.has(hub[2])) {
        res.writeHead(302, {
          location: `/cdn/${hub[2]}`,
          'x-linked-size': String(body.length),
          'x-linked-etag': `"${server.wrongSha ? sha256(Buffer.from('other')) : sha256(body)}"`,
          etag: `"${sha256(body)}"`,
        });
        return res.end();
      }
      res.writeHead(200, { 'content-length': body.length, etag: `"${gitSha1(body)}"` });
      return res.end(req.method === 'HEAD' ? undefined : body);
    }
    if (cdn && FILES[cdn[1]]) {
      const body = FILES[cdn[1]];
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (req.headers.range) server.ranges.push(req.headers.range);
      const start = range ? Number(range[1]) : 0;
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` });
        return res.end();
      }
      res.writeHead(range ? 206 : 200, {
        'content-length': body.length - start,
        ...(range ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
      });
      if (req.method === 'HEAD') return res.end();
      const cut = server.dropEvery ? 1000 : server.dropAfter;
      if (cut !== null) {
        server.dropAfter = null;
        // Part of a response, then the connection dies: what a lost network looks like to the client. The
        // pause lets the client read what arrived (a stream that errors drops chunks it has not handed out).
        return res.write(body.subarray(start, start + cut), () => setTimeout(() => res.socket!.destroy(), 200));
      }
      return res.end(body.subarray(start));
    }
    res.writeHead(404).end('Repository not found');
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
});
after(() => httpServer.close());

function reset() {
  Object.assign(server, { dropAfter: null, dropEvery: false, wrongSha: false, ranges: [] });
}

test('a download fetches every file, verifies sha256 and git ids, reports progress, and makes a valid model', async () => {
  reset();
  const target = path.join(tempDir('dl'), 'gpt2');
  const events: DownloadEvent[] = [];
  await downloadModel('gpt2', target, { base, onEvent: (e) => events.push(e) });
  for (const [name, body] of Object.entries(FILES)) assert.ok(readFileSync(path.join(target, name)).equals(body), name);
  assert.ok(!existsSync(`${target}.download`));
  const done = events.filter((e) => e.type === 'file-done');
  assert.deepEqual(
    done.map((e) => [e.file, e.verified]),
    [['config.json', 'git-sha1'], ['vocab.json', 'git-sha1'], ['merges.txt', 'git-sha1'], ['model.safetensors', 'sha256']],
  );
  const total = Object.values(FILES).reduce((n, b) => n + b.length, 0);
  const last = events.filter((e) => e.type === 'progress').pop();
  assert.deepEqual(last && [last.bytes, last.totalBytes], [total, total]);
  assert.equal((await inspectImport(target)).config.nLayer, 2);
});

test('a connection dropped mid-file is resumed with a Range request', async () => {
  reset();
  server.dropAfter = 100_000;
  const target = path.join(tempDir('dl'), 'gpt2');
  const events: DownloadEvent[] = [];
  await downloadModel('gpt2', target, { base, retryDelayMs: 1, onEvent: (e) => events.push(e) });
  // The resume starts where the written part ends (all 100,000 bytes, unless the drop lost some in flight).
  const from = Number(/^bytes=(\d+)-$/.exec(server.ranges[0] ?? '')?.[1]);
  assert.equal(server.ranges.length, 1);
  assert.ok(from > 0 && from <= 100_000, server.ranges[0]);
  assert.ok(events.some((e) => e.type === 'retry' && e.from === from));
  assert.ok(readFileSync(path.join(target, 'model.safetensors')).equals(FILES['model.safetensors']));
});

test('a download that gave up resumes from its .part file when started again', async () => {
  reset();
  server.dropEvery = true;
  const target = path.join(tempDir('dl'), 'gpt2');
  await assert.rejects(downloadModel('gpt2', target, { base, retries: 1, retryDelayMs: 1 }), (e: unknown) => {
    assert.ok(e instanceof DownloadError && e.code === 'interrupted', String(e));
    return true;
  });
  const part = path.join(`${target}.download`, 'model.safetensors.part');
  const size = statSync(part).size; // two attempts of 1000 bytes each
  assert.ok(size > 0 && size <= 2000, `${size}`);
  assert.ok(!existsSync(target));

  reset();
  const events: DownloadEvent[] = [];
  await downloadModel('gpt2', target, { base, onEvent: (e) => events.push(e) });
  assert.deepEqual(server.ranges, [`bytes=${size}-`]);
  assert.ok(events.some((e) => e.type === 'file-start' && e.file === 'model.safetensors' && e.resumeFrom === size));
  assert.ok(readFileSync(path.join(target, 'model.safetensors')).equals(FILES['model.safetensors']));
});

test('a checksum mismatch is an error and leaves no file behind', async () => {
  reset();
  server.wrongSha = true;
  const target = path.join(tempDir('dl'), 'gpt2');
  await assert.rejects(downloadModel('gpt2', target, { base }), (e: unknown) => {
    assert.ok(e instanceof DownloadError && e.code === 'checksum', String(e));
    assert.match(e.message, /model\.safetensors: sha256 [0-9a-f]{64} does not match/);
    return true;
  });
  assert.ok(!existsSync(target));
  assert.deepEqual(readdirSync(`${target}.download`).filter((f) => f.startsWith('model')), []);
});

test('a corrupted partial file fails verification instead of producing a wrong model', async () => {
  reset();
  const target = path.join(tempDir('dl'), 'gpt2');
  const dir = `${target}.download`;
  await downloadModel('gpt2', path.join(tempDir('dl'), 'warm'), { base }); // the server works
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'model.safetensors.part'), Buffer.alloc(5000, 7)); // not the first 5000 bytes
  await assert.rejects(downloadModel('gpt2', target, { base }), (e: unknown) => e instanceof DownloadError && e.code === 'checksum');
  await downloadModel('gpt2', target, { base }); // the bad part was removed; a new attempt starts clean
  assert.ok(readFileSync(path.join(target, 'model.safetensors')).equals(FILES['model.safetensors']));
});

test('an unknown repository is a 404 error', async () => {
  reset();
  await assert.rejects(downloadModel('gpt3', path.join(tempDir('dl'), 'x'), { base }), (e: unknown) => {
    assert.ok(e instanceof DownloadError && e.code === 'not_found', String(e));
    assert.match(e.message, /not found \(404\)/);
    return true;
  });
});

/** A 127.0.0.1 port nothing listens on: one the system just gave out and took back. */
async function closedPort(): Promise<number> {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  return port;
}

test('an unreachable hub says the computer is offline', async () => {
  const port = await closedPort();
  await assert.rejects(downloadModel('gpt2', path.join(tempDir('dl'), 'x'), { base: `http://127.0.0.1:${port}` }), (e: unknown) => {
    assert.ok(e instanceof DownloadError && e.code === 'offline', String(e));
    assert.match(e.message, /offline/);
    return true;
  });
});

test('cancelling stops the download, and it resumes later', async () => {
  reset();
  const target = path.join(tempDir('dl'), 'gpt2');
  const aborter = new AbortController();
  server.dropAfter = 50_000; // the first response stalls after a part, and the cancel comes during the retry wait
  await assert.rejects(
    downloadModel('gpt2', target, {
      base,
      retryDelayMs: 60_000,
      signal: aborter.signal,
      onEvent: (e) => {
        if (e.type === 'retry') aborter.abort();
      },
    }),
    (e: unknown) => e instanceof DownloadError && e.code === 'cancelled',
  );
  const size = statSync(path.join(`${target}.download`, 'model.safetensors.part')).size;
  assert.ok(size > 0 && size <= 50_000, `${size}`);
  server.ranges = [];
  await downloadModel('gpt2', target, { base });
  assert.deepEqual(server.ranges, [`bytes=${size}-`]);
  assert.ok(readFileSync(path.join(target, 'model.safetensors')).equals(FILES['model.safetensors']));
});

test('inkling download writes the model under --to and says when the hub is unreachable', async () => {
  reset();
  const models = tempDir('dl-cli');
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
  assert.equal(await downloadCommand(['gpt2', '--to', models, '--base', base], io), 0, err.join(''));
  assert.match(out.join(''), /downloaded GPT-2 \(124M\)/);
  assert.match(err.join(''), /model\.safetensors: [\d.]+ MiB, verified by sha256/);
  assert.ok(existsSync(path.join(models, 'gpt2', 'model.safetensors')));
  assert.equal(await downloadCommand(['llama', '--to', models, '--base', base], io), 2);
  assert.equal(await downloadCommand(['gpt2-xl', '--to', models, '--base', `http://127.0.0.1:${await closedPort()}`], io), 1);
  assert.match(err.join(''), /offline/);
});
