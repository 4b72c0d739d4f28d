/**
 * End to end, the model manager: `bin/start.mjs --browser` started without a model as a real child process,
 * driven through Debian's Chromium. The tiny GPT-2 fixture is imported by typing its path, shows up in the
 * list, is made the active model (the engine worker loads it), and a suggestion arrives in the editor.
 * The weights are random, so only that some text arrives is checked. Skipped without Chromium or the fixture.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import type { InklingServer } from './server-process.js';
import { TINY_MODEL, skipReason, useBrowserApp } from './browser-app.js';

const skip = skipReason;

let page: Page;
let server: InklingServer;
const pageProblems: string[] = [];
useBrowserApp({ label: 'models', modelDir: null, viewport: { width: 1280, height: 800 }, problems: pageProblems }, (openedPage, openedServer) => {
  page = openedPage;
  server = openedServer;
});

test('import the tiny model by path, see it listed, use it, get a suggestion', { skip, timeout: 180_000 }, async () => {
  // Started without a model (this checkout has no bundled default): the status bar says how to get one.
  await page.getByTestId('status-engine').waitFor();
  await page.getByTestId('new-doc').click();
  await page.getByTestId('models-toggle').click();
  const manager = page.getByTestId('model-manager');
  await manager.waitFor();

  await page.getByTestId('model-import-path').fill(TINY_MODEL);
  await page.getByTestId('model-import').click();
  const row = page.getByTestId('model-row').filter({ hasText: 'tiny-gpt2' });
  await row.waitFor();
  const rowText = await row.textContent();
  assert.match(rowText ?? '', /2 layers × 32, 4 heads/);
  assert.match(rowText ?? '', /Imported from/);
  assert.match(rowText ?? '', /needs about/);

  await row.getByTestId('model-use').click();
  await row.filter({ hasText: 'active' }).waitFor();
  await page.getByTestId('status-engine').filter({ hasText: 'Ready' }).waitFor({ timeout: 120_000 });
  assert.match((await page.getByTestId('model-active').textContent()) ?? '', /tiny-gpt2/);

  await page.getByTestId('models-toggle').click();
  await page.getByTestId('editor').click();
  // Random weights may propose only spaces now and then: type on until some text is suggested.
  let suggestion = '';
  for (let attempt = 0; attempt < 6 && suggestion.trim() === ''; attempt++) {
    await page.keyboard.type(attempt === 0 ? 'The weather today is' : ' and');
    try {
      const found = await page.waitForFunction(() => {
        const shown = document.querySelector('[data-testid="suggestion"]')?.textContent ?? '';
        return shown.trim() !== '' ? shown : null;
      }, null, { timeout: 15_000 });
      suggestion = (await found.jsonValue()) as string;
    } catch {
      // Nothing shown this time; type a little more.
    }
  }
  assert.notEqual(suggestion.trim(), '', `a suggestion from the imported model; server output:\n${server.output().slice(-2000)}`);
  assert.deepEqual(pageProblems, []);
});
