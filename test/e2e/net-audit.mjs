/**
 * Preloaded into the server under test (`node --import ./test/e2e/net-audit.mjs bin/start.mjs …`): appends
 * one JSON line per outgoing network attempt (TCP connect, UDP send/connect, DNS lookup) to the file named
 * by INKLING_NET_AUDIT. It only watches and calls through, so the app behaves as it would without it.
 *
 * Sampling the process's sockets in /proc misses a connection that opens and closes between two samples;
 * this log does not. Worker threads inherit `--import`, so the engine worker is watched too.
 */
import { appendFileSync } from 'node:fs';
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import { threadId } from 'node:worker_threads';

const logFile = process.env.INKLING_NET_AUDIT;

function record(kind, target) {
  if (!logFile) return;
  try {
    appendFileSync(logFile, JSON.stringify({ kind, target, pid: process.pid, thread: threadId }) + '\n');
  } catch {
    // A failed audit write must not change what the app does; the test notices the missing lines.
  }
}

// Proves to the test that this thread is watched.
record('audit-loaded', {});

/** `socket.connect` takes (options), (path), (port, host) or, from `net.connect`, one normalized array. */
function connectTarget(args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof first === 'object' && first !== null) {
    if (first.path !== undefined) return { path: String(first.path) };
    return { host: first.host ?? 'localhost', port: first.port };
  }
  if (typeof first === 'string' && !/^\d+$/.test(first)) return { path: first };
  const host = Array.isArray(args[0]) ? undefined : args[1];
  return { host: typeof host === 'string' ? host : 'localhost', port: first };
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function auditedConnect(...args) {
  record('tcp-connect', connectTarget(args));
  return connect.apply(this, args);
};

const udpSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function auditedSend(...args) {
  // (msg, [offset, length,] port, address, cb): the address is the first string after the port.
  const port = args.find((a, i) => i > 0 && typeof a === 'number');
  const host = args.find((a, i) => i > 0 && typeof a === 'string');
  record('udp-send', { host: host ?? '(connected)', port });
  return udpSend.apply(this, args);
};

const udpConnect = dgram.Socket.prototype.connect;
dgram.Socket.prototype.connect = function auditedUdpConnect(port, address, ...rest) {
  record('udp-connect', { host: typeof address === 'string' ? address : 'localhost', port });
  return udpConnect.call(this, port, address, ...rest);
};

const lookup = dns.lookup;
dns.lookup = function auditedLookup(hostname, ...rest) {
  record('dns-lookup', { host: hostname });
  return lookup.call(this, hostname, ...rest);
};
const lookupPromise = dns.promises.lookup;
dns.promises.lookup = function auditedLookupPromise(hostname, ...rest) {
  record('dns-lookup', { host: hostname });
  return lookupPromise.call(this, hostname, ...rest);
};
