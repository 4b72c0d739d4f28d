// The update checks of the desktop app (main/electron/updates.ts), with a fake updater: off by default,
// on and off with the setting, and honest about why they cannot run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SETTINGS } from '../../main/store/settings.js';
import { createUpdateChecks, type UpdateCheckParts } from '../../main/electron/updates.js';

function fakeParts(overrides: Partial<UpdateCheckParts> = {}) {
  const log: string[] = [];
  let checks = 0;
  let loads = 0;
  let failNext = false;
  const parts: UpdateCheckParts = {
    isPackaged: true,
    hasFeed: () => true,
    loadUpdater: async () => {
      loads++;
      return {
        async checkForUpdatesAndNotify() {
          checks++;
          if (failNext) {
            failNext = false;
            throw new Error('net::ERR_INTERNET_DISCONNECTED');
          }
          return null;
        },
      };
    },
    log: (message) => log.push(message),
    intervalMs: 20,
    ...overrides,
  };
  return {
    parts,
    log,
    checks: () => checks,
    loads: () => loads,
    failNextCheck: () => (failNext = true),
  };
}

const settle = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

test('the setting is off by default, and off means the updater is never even loaded', async () => {
  assert.equal(DEFAULT_SETTINGS.checkForUpdates, false);
  const fake = fakeParts();
  const updates = createUpdateChecks(fake.parts);
  updates.apply(DEFAULT_SETTINGS);
  await settle(60);
  assert.equal(updates.state(), 'off');
  assert.equal(fake.loads(), 0);
  assert.equal(fake.checks(), 0);
  assert.deepEqual(fake.log, []);
});

test('turned on: checks at once and then every interval; turned off: stops', async () => {
  const fake = fakeParts();
  const updates = createUpdateChecks(fake.parts);
  updates.apply({ checkForUpdates: true });
  assert.equal(updates.state(), 'on');
  await settle(70);
  const checked = fake.checks();
  assert.ok(checked >= 2, `checked at once and again after the interval (${checked} checks)`);
  assert.equal(fake.loads(), 1, 'the updater is loaded once');
  updates.apply({ checkForUpdates: true });
  assert.equal(fake.loads(), 1, 'applying the same setting again starts nothing new');

  updates.apply({ checkForUpdates: false });
  const atStop = fake.checks();
  await settle(70);
  assert.equal(fake.checks(), atStop, 'no check after turning off');
  assert.deepEqual(fake.log, ['update checks are on', 'update checks are off']);
  updates.stop();
});

test('a failed check is logged and does not stop later checks', async () => {
  const fake = fakeParts();
  fake.failNextCheck();
  const updates = createUpdateChecks(fake.parts);
  updates.apply({ checkForUpdates: true });
  await settle(70);
  updates.stop();
  assert.ok(fake.log.includes('the update check failed: net::ERR_INTERNET_DISCONNECTED'), fake.log.join('\n'));
  assert.ok(fake.checks() >= 2, 'it tried again');
});

test('turned on where it cannot work, it says why and contacts nothing', async () => {
  for (const [overrides, why] of [
    [{ isPackaged: false }, /only a packaged app can update itself/],
    [{ hasFeed: () => false }, /this build has no update feed/],
  ] as const) {
    const fake = fakeParts(overrides);
    const updates = createUpdateChecks(fake.parts);
    updates.apply({ checkForUpdates: true });
    await settle(40);
    assert.equal(updates.state(), 'unavailable');
    assert.equal(fake.loads(), 0);
    assert.equal(fake.log.length, 1);
    assert.match(fake.log[0]!, why);
  }
});
