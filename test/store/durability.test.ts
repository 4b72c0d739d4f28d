import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { openStore } from '../../main/store/index.js';
import { bodyFor, versionOf } from './durability-body.js';
import { tempDataDir } from './helpers.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const writerScript = fileURLToPath(new URL('./durability-writer.ts', import.meta.url));
const BODY_CHARS = 1_200_000;

interface Round {
  /** Commits the child reports before the kill is scheduled (0: right after it opened the store, in its first save). */
  commitsBeforeKill: number;
  /** When to kill, as a fraction of the time one save took here (measured between the last two reports). */
  atFractionOfSave: number;
}

/** Runs the writer until `round` says, SIGKILLs it, and returns the last version it reported as committed. */
function runWriterAndKill(
  dataDir: string,
  documentId: string,
  round: Round,
): Promise<{ ready: number; lastCommitted: number; killedMidSave: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writerScript, dataDir, documentId, String(BODY_CHARS)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let ready = -1;
    let lastCommitted = -1;
    let lastSaving = -1;
    let commits = 0;
    const reportTimes: number[] = [];
    let killScheduled = false;
    let stdout = '';
    let stderr = '';
    const scheduleKill = () => {
      killScheduled = true;
      const [before, last] = reportTimes.slice(-2);
      const saveMs = before !== undefined && last !== undefined ? last - before : 0;
      setTimeout(() => child.kill('SIGKILL'), round.atFractionOfSave * saveMs);
    };
    child.stdout.setEncoding('utf8').on('data', (data: string) => {
      stdout += data;
      const lines = stdout.split('\n');
      stdout = lines.pop()!;
      for (const line of lines) {
        const [word, number] = line.split(' ');
        if (word === 'ready') ready = Number(number);
        if (word === 'saving') lastSaving = Number(number);
        if (word === 'committed') {
          reportTimes.push(performance.now());
          lastCommitted = Number(number);
          commits++;
        }
      }
      if (!killScheduled && ready >= 0 && commits >= round.commitsBeforeKill) scheduleKill();
    });
    child.stderr.setEncoding('utf8').on('data', (data: string) => (stderr += data));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`the writer ended by itself (code ${code}):\n${stderr}`));
      else resolve({ ready, lastCommitted, killedMidSave: lastSaving > lastCommitted });
    });
  });
}

test('a writer SIGKILLed mid-save never leaves a damaged database or a torn document', { timeout: 180_000 }, async (t) => {
  const dataDir = tempDataDir();
  const setup = openStore(dataDir, { trashRetentionDays: null });
  const documentId = setup.createDocument('Version 0').id;
  setup.close();

  const rounds: Round[] = [
    { commitsBeforeKill: 2, atFractionOfSave: 0.1 },
    { commitsBeforeKill: 2, atFractionOfSave: 0.4 },
    { commitsBeforeKill: 3, atFractionOfSave: 0.7 },
    { commitsBeforeKill: 2, atFractionOfSave: 0.95 },
    { commitsBeforeKill: 0, atFractionOfSave: 0 },
  ];
  let previous = 0;
  let killsMidSave = 0;
  for (const round of rounds) {
    const { ready, lastCommitted, killedMidSave } = await runWriterAndKill(dataDir, documentId, round);
    if (killedMidSave) killsMidSave++;
    assert.equal(ready, previous, 'the writer starts from the version the last round left');
    const reported = Math.max(lastCommitted, ready);
    assert.ok(reported >= previous + round.commitsBeforeKill, `the writer reported only up to ${reported}`);

    // Checked before the store opens it, by a connection that changes nothing.
    const probe = new Sqlite(`${dataDir}/inkling.db`, { readonly: true });
    assert.equal(probe.pragma('integrity_check', { simple: true }), 'ok');
    probe.close();

    const store = openStore(dataDir, { trashRetentionDays: null });
    assert.equal(store.recovered, null);
    const doc = store.getDocument(documentId)!;
    const version = versionOf(doc.body);
    // The save in flight at the kill may or may not have landed; everything reported must have.
    assert.ok(version === reported || version === reported + 1, `found version ${version}, the writer reported ${reported}`);
    assert.ok(doc.body === bodyFor(version, BODY_CHARS), `the body of version ${version} is torn`);
    assert.equal(doc.title, `Version ${version}`);

    // Each save replaces the whole text, so the same transaction kept the version before as a revision
    // (version 1 replaced an empty body, which is never kept).
    if (version >= 2) {
      const [newest] = store.listRevisions(documentId);
      const revision = store.getRevision(documentId, newest.id)!;
      assert.equal(revision.title, `Version ${version - 1}`);
      assert.ok(revision.body === bodyFor(version - 1, BODY_CHARS), 'the newest revision is torn');
    }
    store.close();
    t.diagnostic(`round ${JSON.stringify(round)}: reported ${reported}, found ${version}, killed mid-save: ${killedMidSave}`);
    previous = version;
  }
  assert.ok(killsMidSave >= 1, 'no kill landed while a save was in progress');
});
