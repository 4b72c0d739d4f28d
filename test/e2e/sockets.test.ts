/**
 * The two network watchers of the end-to-end test can see what they are meant to catch: a process that
 * listens on every interface (and, where this machine has a non-loopback address, talks to it) is flagged
 * by the /proc reading and logged by net-audit.mjs; loopback traffic is not flagged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeAddress, describeSocket, inetSockets, isLoopback, leavesTheMachine } from './sockets.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const linux = process.platform === 'linux' ? false : 'reads Linux /proc';

test('addresses in /proc/net tables decode to their usual forms', () => {
  assert.equal(decodeAddress('0100007F'), '127.0.0.1');
  assert.equal(decodeAddress('00000000'), '0.0.0.0');
  assert.equal(decodeAddress('0101A8C0'), '192.168.1.1');
  assert.equal(decodeAddress('00000000000000000000000001000000'), '0:0:0:0:0:0:0:1');
  assert.equal(decodeAddress('0000000000000000FFFF00000100007F'), '::ffff:127.0.0.1');
  assert.equal(decodeAddress('B80D0120000000000000000001000000'), '2001:db8:0:0:0:0:0:1');
  assert.ok(isLoopback('127.0.0.1') && isLoopback('0:0:0:0:0:0:0:1') && isLoopback('::ffff:127.0.0.1'));
  assert.ok(!isLoopback('192.168.1.1') && !isLoopback('0.0.0.0'));
});

test('a process listening on all interfaces is flagged, its loopback traffic is not, and the audit logs it', { skip: linux, timeout: 30_000 }, async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'inkling-sockets-'));
  const auditFile = path.join(work, 'audit.jsonl');
  const outside = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  // Listens on 127.0.0.1 and on 0.0.0.0, connects to the first over loopback and to the second over a
  // non-loopback address when there is one, then says "ready" and waits to be killed.
  const script = `
    const net = require('node:net');
    const listen = (host) => new Promise((r) => { const s = net.createServer(() => {}); s.listen(0, host, () => r(s.address().port)); });
    const connect = (host, port) => new Promise((r) => { const c = net.connect(port, host, () => r(c)); });
    (async () => {
      const local = await listen('127.0.0.1');
      const any = await listen('0.0.0.0');
      await connect('127.0.0.1', local);
      if (process.argv[1]) await connect(process.argv[1], any);
      console.log('ready');
    })();
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', path.join(here, 'net-audit.mjs'), '-e', script, outside ?? ''], {
    env: { ...process.env, INKLING_NET_AUDIT: auditFile },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
      child.on('exit', (code) => reject(new Error(`the probe exited early (${code})`)));
    });
    const sockets = inetSockets(child.pid!);
    const flagged = sockets.filter(leavesTheMachine);
    const all = sockets.map(describeSocket).join('; ');
    assert.ok(flagged.some((s) => s.state === 'LISTEN' && s.local === '0.0.0.0'), `the 0.0.0.0 listener is flagged: ${all}`);
    assert.ok(
      sockets.some((s) => s.state === 'LISTEN' && s.local === '127.0.0.1' && !leavesTheMachine(s)),
      `the loopback listener is not flagged: ${all}`,
    );
    assert.ok(
      sockets.some((s) => s.state === 'ESTABLISHED' && s.remote === '127.0.0.1' && !leavesTheMachine(s)),
      `the loopback connection is not flagged: ${all}`,
    );
    if (outside) {
      assert.ok(flagged.some((s) => s.state === 'ESTABLISHED' && s.remote === outside), `the connection to ${outside} is flagged: ${all}`);
    }

    const audit = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; target: { host?: string } });
    assert.ok(audit.some((e) => e.kind === 'tcp-connect' && e.target.host === '127.0.0.1'));
    if (outside) assert.ok(audit.some((e) => e.kind === 'tcp-connect' && e.target.host === outside));
  } finally {
    child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
});
