/**
 * End to end, fine-tuning: the real browser-mode server (child process, tiny GPT-2 on wasm, SQLite) driven
 * through Debian's Chromium. Pick a document and a file, start a short LoRA run, watch the progress reach
 * done with the held-out perplexity before and after, switch the style on, and get a suggestion from it.
 * Skipped when Chromium or the model fixture is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import type { InklingServer } from './server-process.js';
import { SLOW, TINY_MODEL, skipReason, useBrowserApp } from './browser-app.js';

const skip = skipReason;

const LETTERS = 'Dear Marigold, the lighthouse keeper waved at the ships again today, and the gulls answered him. '.repeat(12);

let page: Page;
let server: InklingServer;
const pageProblems: string[] = [];
useBrowserApp({ label: 'finetune', modelDir: TINY_MODEL, viewport: { width: 1400, height: 900 }, problems: pageProblems }, (openedPage, openedServer) => {
  page = openedPage;
  server = openedServer;
});

test('pick a document and a file, train a short LoRA run, switch the style on, get a suggestion', { skip, timeout: 150_000 }, async () => {
  await page.getByTestId('status-engine').filter({ hasText: 'Ready' }).waitFor({ timeout: 120_000 });

  // A document to learn from, saved in the store.
  await page.getByTestId('new-doc').click();
  await page.getByTestId('doc-title').fill('Letters to Marigold');
  await page.getByTestId('editor').fill(LETTERS);
  await page.waitForFunction(() => {
    const status = document.querySelector('[data-testid="save-state"]');
    return status?.textContent?.trim() === 'Saved' && status.getAttribute('title')?.startsWith('Saved at');
  });

  await page.getByTestId('finetune-toggle').click();
  const panel = page.getByTestId('finetune-panel');
  await panel.waitFor();
  await panel.getByTestId('finetune-doc').first().check();
  await panel.getByTestId('finetune-files').setInputFiles({ name: 'more-letters.txt', mimeType: 'text/plain', buffer: Buffer.from(LETTERS.toUpperCase()) });
  await panel.getByText('more-letters.txt').waitFor();
  await panel.locator('summary').click();
  await panel.getByTestId('finetune-steps').fill('4');

  // The plan: tokens and steps, and an honest "not known yet" for the time of a first run.
  await panel.getByTestId('finetune-plan').filter({ hasText: '4 training steps' }).waitFor();
  assert.match((await panel.getByTestId('finetune-plan').textContent()) ?? '', /tokens to learn from[\s\S]*not known yet/);

  await panel.getByTestId('finetune-start').click();
  const progress = panel.getByTestId('finetune-progress');
  await progress.waitFor();
  try {
    await panel.locator('[data-testid="finetune-progress"][data-state="done"]').waitFor({ timeout: SLOW });
  } catch (err) {
    throw new Error(`the run did not finish: panel says ${JSON.stringify(await panel.textContent())}; server: ${server.output().slice(-2000)}`, { cause: err });
  }
  assert.equal(await progress.getAttribute('aria-valuenow'), '100');
  const before = Number(await panel.getByTestId('ppl-before').textContent());
  const afterRun = Number(await panel.getByTestId('ppl-after').textContent());
  assert.ok(before > 1 && afterRun > 1, `perplexity ${before} → ${afterRun}`);
  assert.ok((await panel.locator('[data-testid="finetune-chart"] path').count()) >= 1, 'the loss chart drew a curve');

  // The run became a style; switch it on for suggestions.
  const style = panel.getByTestId('style').first();
  await style.waitFor();
  await style.getByTestId('style-use').click();
  await panel.locator('[data-testid="style"][data-active="true"]').waitFor();

  // A suggestion from the styled model.
  await page.getByTestId('doc-title').click();
  await page.getByTestId('editor').focus();
  await page.keyboard.press('Control+End');
  await page.keyboard.type(' Dear');
  let suggestion = '';
  for (let attempt = 0; attempt < 6 && suggestion.trim() === ''; attempt++) {
    try {
      const found = await page.waitForFunction(() => {
        const shown = document.querySelector('[data-testid="suggestion"]')?.textContent ?? '';
        return shown.trim() !== '' ? shown : null;
      }, null, { timeout: 15_000 });
      suggestion = (await found.jsonValue()) as string;
    } catch {
      await page.keyboard.press('Control+Space');
    }
  }
  assert.notEqual(suggestion.trim(), '', 'a suggestion appeared with the style on');
  assert.deepEqual(pageProblems, []);
});
