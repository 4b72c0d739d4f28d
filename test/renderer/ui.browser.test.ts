/**
 * The built renderer in headless Chromium, against the in-memory mock API (browser/mock-inkling.js):
 * suggestions end to end (ghost text, Tab, undo, word accept, type-through, Esc), a 1 MB paste, the
 * document list, history and settings; no CSP violations, no console errors, no foreign requests.
 * Screenshots go to test-artifacts/renderer/. Skipped when Chromium is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const artifacts = path.join(repoRoot, 'test-artifacts', 'renderer');
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

let work: string;
let server: Server;
let origin: string;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];
const foreignRequests: string[] = [];

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

before(async () => {
  if (skip) return;
  work = mkdtempSync(path.join(tmpdir(), 'inkling-ui-'));
  const outDir = path.join(work, 'dist');
  const { build } = await import('vite');
  await build({
    configFile: path.join(repoRoot, 'renderer', 'vite.config.ts'),
    logLevel: 'error',
    build: { outDir, emptyOutDir: true, sourcemap: false },
  });

  server = createServer((req, res) => {
    const urlPath = new URL(req.url ?? '/', 'http://x').pathname;
    const file = path.join(outDir, urlPath === '/' ? 'index.html' : path.normalize(urlPath));
    if (!file.startsWith(outDir) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { chromium } = await import('playwright-core');
  context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
  });
  await context.addInitScript({ path: path.join(repoRoot, 'test', 'renderer', 'browser', 'mock-inkling.js') });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (request) => {
    if (!request.url().startsWith(origin)) foreignRequests.push(request.url());
  });
  await page.goto(`${origin}/`);
  mkdirSync(artifacts, { recursive: true });
});

after(async () => {
  if (skip) return;
  await context?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  rmSync(work, { recursive: true, force: true });
});

const editor = () => page.getByTestId('editor');
const suggestion = () => page.getByTestId('suggestion');
const value = () => editor().inputValue();
const mock = <T>(fn: string) => page.evaluate(`window.__inklingMock.${fn}`) as Promise<T>;

/**
 * How far (px) the ghost text's first line is from the textarea's last line of text; 0 when the mirror
 * lines up. Valid with the caret at the very end of a text taller than the editor.
 */
async function ghostLineOffset(): Promise<number> {
  return page.evaluate(() => {
    const ta = document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement;
    const ghost = document.querySelector('[data-testid="suggestion"]')!.firstChild!;
    if (ta.scrollHeight <= ta.clientHeight) throw new Error('the text must be taller than the editor');
    const style = getComputedStyle(ta);
    const lineHeight = parseFloat(style.lineHeight);
    const textEnd = ta.getBoundingClientRect().top + ta.clientTop + ta.scrollHeight - parseFloat(style.paddingBottom) - ta.scrollTop;
    const range = document.createRange();
    range.setStart(ghost, 0);
    range.setEnd(ghost, 1);
    const first = range.getClientRects()[0]!;
    return (first.top + first.bottom) / 2 - (textEnd - lineHeight / 2);
  });
}

async function caretToEnd(): Promise<void> {
  await editor().focus();
  await editor().evaluate((el: HTMLTextAreaElement) => el.setSelectionRange(el.value.length, el.value.length));
}

test('loads the documents and the engine status; the backend shows with its reason', { skip }, async () => {
  await page.getByTestId('doc-item').first().waitFor();
  assert.equal(await page.getByTestId('doc-item').count(), 4);
  const backend = page.getByTestId('status-backend');
  await assert.doesNotReject(backend.filter({ hasText: 'wasm' }).waitFor({ timeout: 5000 }));
  assert.equal((await backend.textContent())?.trim(), 'wasm · 2 threads · exact · AVX2');
  assert.match((await backend.getAttribute('title')) ?? '', /WebAssembly.*; prompts on native AVX2 kernels$/);
  assert.equal(await page.getByTestId('doc-title').inputValue(), 'A slow morning');
  assert.match(await value(), /^The house was still/);
  await page.screenshot({ path: path.join(artifacts, 'initial.png') });
});

test('a pause at the end of the text shows a ghost suggestion; Tab accepts it as one undo step', { skip }, async () => {
  await caretToEnd();
  const before = await value();
  await page.keyboard.type(' I');
  await suggestion().waitFor({ timeout: 5000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="suggestion"]')?.textContent?.endsWith('.'));
  assert.equal(await suggestion().textContent(), ' the light came in slowly.');
  const requests = await mock<{ prefix: string; numAlternatives: number }[]>('requests');
  assert.ok(requests.at(-1)!.prefix.endsWith('boiled, I'));
  assert.equal(requests.at(-1)!.numAlternatives, 1);

  // The ghost text sits on the caret's line, inside the visible part of the editor.
  const ghostBox = (await suggestion().boundingBox())!;
  const editorBox = (await editor().boundingBox())!;
  assert.ok(ghostBox.y > editorBox.y && ghostBox.y < editorBox.y + editorBox.height, 'ghost is in view');
  const offset = await ghostLineOffset();
  assert.ok(Math.abs(offset) < 3, `ghost text is on the caret's line (off by ${offset}px)`);
  await page.screenshot({ path: path.join(artifacts, 'suggestion.png') });

  await page.keyboard.press('Tab');
  assert.equal(await value(), `${before} I the light came in slowly.`);
  assert.equal(await suggestion().count(), 0);
  await page.keyboard.press('Control+z');
  assert.equal(await value(), `${before} I`, 'one undo removes the accepted suggestion');
});

test('Ctrl+Right accepts a word; typing the same letters keeps the rest; other letters drop it', { skip }, async () => {
  await caretToEnd();
  await page.keyboard.type('\n\nThen');
  await page.waitForFunction(() => document.querySelector('[data-testid="suggestion"]')?.textContent?.endsWith('.'));
  await page.keyboard.press('Control+ArrowRight');
  assert.match(await value(), /Then the$/);
  assert.equal(await suggestion().textContent(), ' light came in slowly.');
  const requestsBefore = (await mock<unknown[]>('requests')).length;
  await page.keyboard.type(' li');
  assert.equal(await suggestion().textContent(), 'ght came in slowly.');
  assert.equal((await mock<unknown[]>('requests')).length, requestsBefore, 'no new request while typing through');
  await page.keyboard.type('x');
  assert.equal(await suggestion().count(), 0);
  // Esc dismisses a fresh one.
  await page.keyboard.type(' and');
  await suggestion().waitFor();
  await page.keyboard.press('Escape');
  assert.equal(await suggestion().count(), 0);
});

test('a caret that comes to rest at the end of a paragraph warms the engine there, and shows nothing', { skip }, async () => {
  await editor().focus();
  const before = (await mock<unknown[]>('requests')).length;
  const end = await editor().evaluate((el: HTMLTextAreaElement) => {
    const at = el.value.indexOf('\n');
    el.setSelectionRange(at, at);
    return at;
  });
  await page.waitForFunction((n) => (window as unknown as { __inklingMock: { requests: unknown[] } }).__inklingMock.requests.length > n, before);
  const sent = (await mock<{ prefix: string; prefixLength: number; prefillOnly?: boolean }[]>('requests')).slice(before);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].prefillOnly, true);
  assert.equal(sent[0].prefixLength, end);
  assert.equal(sent[0].prefix, (await value()).slice(0, end).slice(-80));
  await page.waitForTimeout(300);
  assert.equal(await suggestion().count(), 0);
  assert.equal((await mock<unknown[]>('requests')).length, before + 1, 'resting there does not warm again');
});

test('Alt+] fetches alternatives and cycles through them', { skip }, async () => {
  await caretToEnd();
  await page.keyboard.type(' so');
  await page.waitForFunction(() => document.querySelector('[data-testid="suggestion"]')?.textContent?.endsWith('.'));
  await page.keyboard.press('Alt+BracketRight');
  await page.waitForFunction(() => document.querySelector('[data-testid="suggestion"]')?.textContent === ' the kettle began to sing.');
  const last = (await mock<{ numAlternatives: number }[]>('requests')).at(-1)!;
  assert.equal(last.numAlternatives, 3);
  await page.keyboard.press('Alt+BracketRight');
  assert.equal(await suggestion().textContent(), ' nobody else was awake.');
  await page.keyboard.press('Alt+BracketLeft');
  assert.equal(await suggestion().textContent(), ' the kettle began to sing.');
  await page.keyboard.press('Escape');
});

test('autosave writes the text shortly after typing stops, and the status says Saved', { skip }, async () => {
  await page.getByTestId('save-state').filter({ hasText: 'Saved' }).waitFor({ timeout: 5000 });
  const saves = await mock<{ id: string; patch: { body?: number } }[]>('saves');
  assert.ok(saves.length > 0);
  assert.equal(saves.at(-1)!.patch.body, (await value()).length);
});

test('a 1 MB paste is taken, counted and saved, and suggestions still line up at its end', { skip }, async () => {
  await page.getByTestId('new-doc').click();
  await page.waitForFunction(() => (document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement).value === '');
  const paragraph = 'Rain fell on the long road north, and the travellers kept walking without a word. 雨が降る。 🌧️\n';
  const big = paragraph.repeat(Math.ceil(1_048_576 / paragraph.length));
  await editor().focus();
  // A real paste through the clipboard (execCommand('insertText') is far slower with many lines).
  await page.evaluate((text) => navigator.clipboard.writeText(text), big);
  await page.keyboard.press('Control+V');
  await page.waitForFunction((n) => (document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement).value.length === n, big.length, {
    timeout: 60_000,
  });
  await page.getByTestId('word-count').filter({ hasText: /^[\d,]{6,} words$/ }).waitFor({ timeout: 5000 });
  await page.keyboard.type('At last the');
  await suggestion().waitFor({ timeout: 5000 });
  const requests = await mock<{ prefixLength: number }[]>('requests');
  assert.ok(requests.at(-1)!.prefixLength <= 16_384, 'the prompt is capped, not the whole megabyte');
  const ghostBox = (await suggestion().boundingBox())!;
  const editorBox = (await editor().boundingBox())!;
  assert.ok(ghostBox.y > editorBox.y && ghostBox.y < editorBox.y + editorBox.height, 'ghost is in view at the end');
  const offset = await ghostLineOffset();
  assert.ok(Math.abs(offset) < 3, `ghost text is on the caret's line (off by ${offset}px)`);
  await page.keyboard.press('Tab');
  assert.match((await value()).slice(-40), /At last the light came in slowly\.$/);
  await page.getByTestId('save-state').filter({ hasText: 'Saved' }).waitFor({ timeout: 10_000 });
  const saves = await mock<{ patch: { body?: number } }[]>('saves');
  assert.equal(saves.at(-1)!.patch.body, (await value()).length);
});

test('rename, search, delete with undo', { skip }, async () => {
  await page.getByTestId('doc-title').fill('Rain diary');
  await page.getByTestId('doc-item').filter({ hasText: 'Rain diary' }).waitFor();
  await page.getByTestId('search').fill('lisbon');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="doc-item"]').length === 1);
  assert.match((await page.getByTestId('doc-item').textContent()) ?? '', /Letter to Mira/);
  await page.getByTestId('search').fill('');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="doc-item"]').length === 5);

  const row = page.locator('li', { has: page.getByTestId('doc-item').filter({ hasText: 'Rain diary' }) });
  await row.getByTestId('delete-doc').click();
  await page.getByTestId('toast').filter({ hasText: 'Rain diary' }).waitFor();
  assert.equal(await page.getByTestId('doc-item').count(), 4);
  await page.screenshot({ path: path.join(artifacts, 'deleted-toast.png') });
  await page.getByTestId('toast-action').click();
  await page.getByTestId('doc-item').filter({ hasText: 'Rain diary' }).waitFor();
  assert.equal(await page.getByTestId('doc-title').inputValue(), 'Rain diary');
});

test('history lists revisions and restores one', { skip }, async () => {
  await page.getByTestId('doc-item').filter({ hasText: 'A slow morning' }).click();
  await page.waitForFunction(() => (document.querySelector('[data-testid="doc-title"]') as HTMLInputElement).value === 'A slow morning');
  await page.getByTestId('history-toggle').click();
  await page.getByTestId('revision').first().waitFor();
  const count = await page.getByTestId('revision').count();
  assert.ok(count >= 2);
  await page.screenshot({ path: path.join(artifacts, 'history.png') });
  const oldest = page.getByTestId('revision').last();
  await oldest.getByTestId('restore-revision').click();
  await page.waitForFunction(() => !(document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement).value.includes('By the time'));
  await page.getByTestId('history-toggle').click();
});

test('settings are read and changed through the API', { skip }, async () => {
  await page.getByTestId('settings-toggle').click();
  await page.getByTestId('settings-panel').waitFor();
  await page.screenshot({ path: path.join(artifacts, 'settings.png') });
  await page.getByTestId('settings-panel').locator('label.toggle').first().click();
  await page.waitForFunction(() => (window as unknown as { __inklingMock: { settingsUpdates: unknown[] } }).__inklingMock.settingsUpdates.length > 0);
  const updates = await mock<unknown[]>('settingsUpdates');
  assert.deepEqual(updates.at(-1), { suggestionsEnabled: false });
  // Suggestion speed: exact is chosen, and fast says what it costs.
  assert.equal(await page.getByTestId('setting-precision-exact').isChecked(), true);
  const panelText = (await page.getByTestId('settings-panel').textContent()) ?? '';
  assert.match(panelText, /about 2× faster suggestions with int8 weights; perplexity within ~1% of exact/i);
  await page.getByTestId('setting-precision-fast').check();
  await page.waitForFunction(() =>
    (window as unknown as { __inklingMock: { settingsUpdates: Array<{ precision?: string }> } }).__inklingMock.settingsUpdates.some((u) => u.precision === 'fast'),
  );
  assert.deepEqual((await mock<unknown[]>('settingsUpdates')).at(-1), { precision: 'fast' });
  await page.getByTestId('settings-toggle').click();
});

test('models: "Choose…" opens the dialog and imports the chosen folder with progress; gone where there is no dialog', { skip }, async () => {
  await page.getByTestId('models-toggle').click();
  await page.getByTestId('model-manager').waitFor();
  // Cancelled: nothing is imported.
  await page.getByTestId('model-import-choose').click();
  await page.waitForFunction(() => (window as unknown as { __inklingMock: { picks: unknown[] } }).__inklingMock.picks.length === 1);
  assert.deepEqual(await mock<unknown[]>('imports'), []);

  // The import holds between its progress steps until the progress has been seen.
  await page.evaluate(() => {
    const m = (window as unknown as { __inklingMock: { pickAnswer: string; holdImports: boolean } }).__inklingMock;
    m.pickAnswer = '/home/me/tiny-gpt2';
    m.holdImports = true;
  });
  await page.getByTestId('model-import-choose').click();
  await page.getByTestId('model-import-progress').waitFor();
  await page.evaluate(() => {
    const m = (window as unknown as { __inklingMock: { holdImports: boolean; releaseImport: () => void } }).__inklingMock;
    m.holdImports = false;
    m.releaseImport();
  });
  await page.getByTestId('model-row').filter({ hasText: 'tiny-gpt2' }).waitFor();
  assert.deepEqual(await mock<unknown[]>('imports'), ['/home/me/tiny-gpt2']);
  await page.getByTestId('model-import-progress').waitFor({ state: 'detached' });
  await page.evaluate(() => ((window as unknown as { __inklingMock: { pickAnswer: null } }).__inklingMock.pickAnswer = null));
  await page.getByTestId('model-import-choose-file').click();
  await page.waitForFunction(() => (window as unknown as { __inklingMock: { picks: unknown[] } }).__inklingMock.picks.length === 3);
  assert.deepEqual(await mock<unknown[]>('picks'), [null, null, 'file']);
  await page.screenshot({ path: path.join(artifacts, 'models-choose.png') });

  // Where main has no dialog (browser mode), the buttons go and the path field stays.
  await page.evaluate(() => ((window as unknown as { __inklingMock: { pickAnswer: string } }).__inklingMock.pickAnswer = 'unavailable'));
  await page.getByTestId('model-import-choose').click();
  assert.match(await page.getByTestId('model-import-error').innerText(), /type or paste the path/);
  assert.equal(await page.getByTestId('model-import-choose').count(), 0);
  assert.equal(await page.getByTestId('model-import-path').isVisible(), true);
  await page.getByTestId('models-toggle').click();
});

test('writes in any script; no CSP violations, console errors or foreign requests', { skip }, async () => {
  await page.getByTestId('doc-item').filter({ hasText: 'Walk at dusk' }).click();
  await page.waitForFunction(() => (document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement).value.startsWith('我们'));
  await caretToEnd();
  await page.keyboard.type(' 🌙 שלום');
  assert.match(await value(), /one by one\. 🌙 שלום$/);
  await page.screenshot({ path: path.join(artifacts, 'scripts.png') });
  assert.deepEqual(problems, []);
  assert.deepEqual(foreignRequests, []);
});
