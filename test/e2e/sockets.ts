/**
 * The internet sockets a process (and its child processes) holds right now, read from Linux's /proc: the
 * process's fd table names socket inodes, and /proc/<pid>/net/{tcp,udp,raw}{,6} (the tables of its network
 * namespace) give each inode's addresses and state.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface InetSocket {
  pid: number;
  table: string;
  local: string;
  localPort: number;
  remote: string;
  remotePort: number;
  /** The kernel's TCP state name (UDP and raw sockets use the same numbers loosely). */
  state: string;
}

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

const TABLES = ['tcp', 'tcp6', 'udp', 'udp6', 'raw', 'raw6'];

/** The process and all its descendants (the engine is a thread, but a child process would count too). */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${all[i]}/task`);
    } catch {
      continue; // exited meanwhile
    }
    for (const tid of tasks) {
      try {
        const children = readFileSync(`/proc/${all[i]}/task/${tid}/children`, 'utf8').trim();
        if (children !== '') all.push(...children.split(/\s+/).map(Number));
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return all;
}

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // closed between the listing and the read
    }
  }
  return inodes;
}

/** "0100007F" → "127.0.0.1"; 32 hex digits → an uncompressed IPv6 address (each 32-bit word is in host byte order). */
export function decodeAddress(hex: string): string {
  const bytesOfWord = (word: string) => [6, 4, 2, 0].map((i) => parseInt(word.slice(i, i + 2), 16));
  if (hex.length === 8) return bytesOfWord(hex).join('.');
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) bytes.push(...bytesOfWord(hex.slice(w * 8, w * 8 + 8)));
  // An IPv4-mapped address (::ffff:a.b.c.d) reads better in its IPv4 form.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.slice(12).join('.')}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // Uncompressed (no "::"): plain to compare, and this is only ever read by the checks below and by people.
  return groups.join(':');
}

export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || /^::ffff:127\./.test(address) || address === '0:0:0:0:0:0:0:1';
}

export function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '0:0:0:0:0:0:0:0' || address === '::ffff:0.0.0.0';
}

/** Every TCP/UDP/raw socket held by `pid` or a descendant. Unix-domain sockets are local by nature and left out. */
export function inetSockets(pid: number): InetSocket[] {
  const found: InetSocket[] = [];
  for (const owner of processTree(pid)) {
    const inodes = socketInodes(owner);
    if (inodes.size === 0) continue;
    for (const table of TABLES) {
      let lines: string[];
      try {
        lines = readFileSync(`/proc/${owner}/net/${table}`, 'utf8').trim().split('\n').slice(1);
      } catch {
        continue;
      }
      for (const line of lines) {
        const cols = line.trim().split(/\s+/);
        const [localHex, remoteHex, stateHex, , , , , , inode] = cols.slice(1);
        if (!inode || !inodes.has(inode)) continue;
        const [local, localPort] = localHex!.split(':');
        const [remote, remotePort] = remoteHex!.split(':');
        found.push({
          pid: owner,
          table,
          local: decodeAddress(local!),
          localPort: parseInt(localPort!, 16),
          remote: decodeAddress(remote!),
          remotePort: parseInt(remotePort!, 16),
          state: table.startsWith('tcp') ? (TCP_STATES[stateHex!] ?? stateHex!) : stateHex!,
        });
      }
    }
  }
  return found;
}

/**
 * A socket that could carry data off this machine: one talking to a non-loopback peer, or one that listens
 * or waits on a non-loopback address.
 */
export function leavesTheMachine(s: InetSocket): boolean {
  if (isUnspecified(s.remote)) return !isLoopback(s.local);
  return !isLoopback(s.remote);
}

export function describeSocket(s: InetSocket): string {
  return `${s.table} ${s.local}:${s.localPort} → ${s.remote}:${s.remotePort} ${s.state} (pid ${s.pid})`;
}
