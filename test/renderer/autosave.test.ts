import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Autosaver, type DocumentPatch, type SaveStatus, type Timers } from '../../renderer/src/lib/autosave.js';

/** Timers run by hand. */
class ManualTimers implements Timers {
  private next = 1;
  readonly pending = new Map<number, { callback: () => void; ms: number }>();
  set(callback: () => void, ms: number): number {
    const id = this.next++;
    this.pending.set(id, { callback, ms });
    return id;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  fireAll(): void {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const timer of due) timer.callback();
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function setup(save: (id: string, patch: DocumentPatch) => Promise<unknown>) {
  const timers = new ManualTimers();
  const statuses: SaveStatus['state'][] = [];
  const saver = new Autosaver({ save, timers, delayMs: 800, now: () => 1000, onStatus: (s) => statuses.push(s.state) });
  return { saver, timers, statuses };
}

test('edits are merged and saved once after the pause', async () => {
  const saved: [string, DocumentPatch][] = [];
  const { saver, timers, statuses } = setup(async (id, patch) => void saved.push([id, patch]));
  saver.change('a', { body: 'H' });
  saver.change('a', { body: 'Hello' });
  saver.change('a', { title: 'Greeting' });
  assert.equal(timers.pending.size, 1, 'one timer, restarted by each edit');
  assert.equal([...timers.pending.values()][0]!.ms, 800);
  assert.deepEqual(saved, []);
  timers.fireAll();
  await tick();
  assert.deepEqual(saved, [['a', { body: 'Hello', title: 'Greeting' }]]);
  assert.deepEqual(statuses, ['unsaved', 'unsaved', 'unsaved', 'saving', 'saved']);
  assert.equal(saver.current.savedAt, 1000);
  assert.equal(saver.dirty, false);
});

test('flush saves at once and waits for the save', async () => {
  const saved: string[] = [];
  const { saver, timers } = setup(async (_id, patch) => void saved.push(patch.body ?? ''));
  saver.change('a', { body: 'draft' });
  await saver.flush();
  assert.deepEqual(saved, ['draft']);
  assert.equal(timers.pending.size, 0);
  await saver.flush();
  assert.deepEqual(saved, ['draft'], 'nothing new to save');
});

test('edits made during a save are saved after it, never at the same time', async () => {
  let running = 0;
  let release!: () => void;
  const saved: string[] = [];
  const { saver, timers } = setup(async (_id, patch) => {
    running++;
    assert.equal(running, 1, 'one save at a time');
    await new Promise<void>((resolve) => (release = resolve));
    saved.push(patch.body ?? '');
    running--;
  });
  saver.change('a', { body: 'one' });
  const first = saver.flush();
  await tick();
  saver.change('a', { body: 'two' });
  const second = saver.flush();
  release();
  await first;
  await tick();
  release();
  await second;
  assert.deepEqual(saved, ['one', 'two']);
  assert.equal(saver.current.state, 'saved');
  assert.equal(timers.pending.size, 0);
});

test('a failed save keeps the edits, reports the error and retries', async () => {
  let fail = true;
  const saved: DocumentPatch[] = [];
  const { saver, timers } = setup(async (_id, patch) => {
    if (fail) throw new Error('disk full');
    saved.push(patch);
  });
  saver.change('a', { body: 'v1' });
  saver.change('b', { body: 'other' });
  await saver.flush();
  assert.equal(saver.current.state, 'error');
  assert.equal(saver.current.error, 'disk full');
  assert.equal(saver.dirty, true);
  saver.change('a', { title: 'T' });
  fail = false;
  timers.fireAll();
  await tick();
  await saver.flush();
  assert.deepEqual(saved, [{ body: 'v1', title: 'T' }, { body: 'other' }]);
  assert.equal(saver.current.state, 'saved');
  assert.equal(saver.current.error, null);
});

test('discard forgets the edits of a deleted document', async () => {
  const saved: string[] = [];
  const { saver } = setup(async (id) => void saved.push(id));
  saver.change('gone', { body: 'x' });
  saver.discard('gone');
  await saver.flush();
  assert.deepEqual(saved, []);
});
