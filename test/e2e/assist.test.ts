/**
 * End to end, assist: the real browser-mode server (child process, tiny GPT-2 on wasm, SQLite) driven
 * through Debian's Chromium. Select text, open the selection menu (right-click, then Ctrl+Shift+K), classify
 * the tone (probabilities shown), run a rewrite (streams into the side panel, Insert replaces the selection
 * as one undo step) and a translation (its note says GPT-2 translates poorly). The model has random
 * weights: the assertions check what the app does with whatever text arrives. Skipped when Chromium or
 * the model fixture is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { TINY_MODEL, skipReason, useBrowserApp } from './browser-app.js';

const skip = skipReason;

const TEXT = 'hey, can you send me the report soon?';

let page: Page;
const pageProblems: string[] = [];
useBrowserApp({ label: 'assist', modelDir: TINY_MODEL, viewport: { width: 1400, height: 900 }, problems: pageProblems }, (opened) => {
  page = opened;
});

const editor = () => page.getByTestId('editor');

async function selectAll(): Promise<void> {
  await editor().evaluate((el: HTMLTextAreaElement) => {
    el.focus();
    el.setSelectionRange(0, el.value.length);
  });
}

test('classify the tone of a selection, rewrite it into the panel and insert it, see the translation note', { skip, timeout: 150_000 }, async () => {
  await page.getByTestId('status-engine').filter({ hasText: 'Ready' }).waitFor({ timeout: 120_000 });
  await editor().waitFor();
  await editor().fill(TEXT);
  await page.keyboard.press('Escape');

  // Right-click on the selection: the menu offers the four kinds of action.
  await selectAll();
  await editor().click({ button: 'right' });
  const menu = page.getByTestId('assist-menu');
  await menu.waitFor();
  const actions = await menu.getByTestId('assist-item').evaluateAll((items) => items.map((i) => i.getAttribute('data-action')));
  assert.equal(actions[0], 'continue');
  assert.ok(actions.includes('formal') && actions.includes('translate-en-fr'), actions.join(', '));
  assert.equal(actions.at(-1), 'tone');

  await menu.locator('[data-action="tone"]').click();
  const panel = page.getByTestId('assist-panel');
  await panel.getByTestId('tone-result').waitFor();
  const rows = await panel.getByTestId('tone-row').allTextContents();
  assert.equal(rows.length, 3, rows.join(' | '));
  const percents = rows.map((r) => Number(/(\d+)%/.exec(r)?.[1]));
  const total = percents.reduce((a, b) => a + b, 0);
  assert.ok(total >= 98 && total <= 102, `the probabilities add up to about 100%: ${rows.join(' | ')}`);
  for (const label of ['formal', 'casual', 'neutral']) assert.ok(rows.some((r) => r.includes(label)), label);

  // The keyboard shortcut opens the same menu; a rewrite streams into the panel.
  await selectAll();
  await page.keyboard.press('Control+Shift+K');
  await menu.waitFor();
  await menu.locator('[data-action="formal"]').click();
  const insert = panel.getByTestId('assist-insert');
  await page.waitForFunction(() => {
    const button = document.querySelector('[data-testid="assist-insert"]') as HTMLButtonElement | null;
    return button !== null && !button.disabled;
  });
  const output = (await panel.getByTestId('assist-output').textContent())!.trim();
  assert.ok(output.length > 0, 'the rewrite produced text');
  await insert.click();
  assert.equal(await editor().inputValue(), output, 'the output replaced the selection');
  await editor().focus();
  await page.keyboard.press('Control+Z');
  assert.equal(await editor().inputValue(), TEXT, 'one undo step brings the original back');

  // A translation says that GPT-2 translates poorly, and where a better model comes from.
  await selectAll();
  await page.keyboard.press('Control+Shift+K');
  await menu.locator('[data-action="translate-en-fr"]').click();
  await panel.getByTestId('assist-note').filter({ hasText: 'GPT-2' }).waitFor();
  await panel.getByTestId('assist-finetune-link').waitFor();
  assert.deepEqual(pageProblems, []);
});
