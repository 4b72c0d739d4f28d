/**
 * End to end: `bin/start.mjs --browser` as a real child process (server, engine worker with the tiny GPT-2
 * on wasm, SQLite store) driven through Debian's Chromium. Suggestions (Tab, Ctrl+→, Esc, type-through),
 * CJK and emoji text, autosave across a reload and a real restart, a 1 MB paste, and no network traffic
 * beyond 127.0.0.1 from either the page or the server.
 *
 * The tests share one browser and one data folder and run in order. The model has random weights, so the
 * suggestions are gibberish: the assertions check what the editor does with whatever text arrives, never
 * the text itself. Skipped when Chromium or the model fixture is missing.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, ElementHandle, Page } from 'playwright-core';
import { nextWordLength } from '../../renderer/src/lib/suggestion-text.js';
import { describeSocket, inetSockets, isLoopback, leavesTheMachine, type InetSocket } from './sockets.js';
import { startInkling, type InklingServer } from './server-process.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TINY_MODEL = path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(repoRoot, 'test-artifacts', 'e2e');
const skip = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`
  : !existsSync(path.join(TINY_MODEL, 'model.safetensors'))
    ? `no model fixture at ${TINY_MODEL}`
    : false;

/** Generous: the machine may be running other test files on both of its cores. */
const SLOW = 60_000;
const TEST = { skip, timeout: 180_000 };

let work: string;
let dataDir: string;
let netAuditFile: string;
let server: InklingServer | null = null;
let context: BrowserContext | null = null;
let page: Page;
/** Every origin a server of this run listened on: the only places the page may talk to. */
const serverOrigins = new Set<string>();
/** Origins of servers that were stopped: the old page's reconnect attempts to them are expected noise. */
const stoppedOrigins = new Set<string>();
const pageTraffic: string[] = [];
const pageProblems: string[] = [];
const serverSockets: InetSocket[] = [];
/** What `settledSuggestion` saw in the current test, reported as a diagnostic at its end. */
const suggestionLog: string[] = [];
/** Documents whose exact text is known, by title, to check after reloads and the restart. */
const knownDocuments = new Map<string, string>();

async function startServer(): Promise<InklingServer> {
  const started = await startInkling({
    repoRoot,
    dataDir,
    modelDir: TINY_MODEL,
    rendererDir: path.join(work, 'renderer'),
    netAuditFile,
  });
  serverOrigins.add(started.origin);
  return started;
}

/** The server's sockets now, kept for the network test at the end. */
function sampleServerSockets(): void {
  if (server) serverSockets.push(...inetSockets(server.pid));
}

function watch(p: Page): void {
  p.on('websocket', (ws) => pageTraffic.push(ws.url()));
  p.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') pageProblems.push(`${message.type()}: ${message.text()}`);
  });
  p.on('pageerror', (err) => pageProblems.push(`page error: ${err.message}`));
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(path.join(tmpdir(), 'inkling-e2e-'));
  dataDir = path.join(work, 'data');
  netAuditFile = path.join(work, 'net-audit.jsonl');
  mkdirSync(ARTIFACTS, { recursive: true });

  // Build the renderer as it is now (dist/renderer may be stale while the renderer is being worked on).
  const { build } = await import('vite');
  await build({
    configFile: path.join(repoRoot, 'renderer', 'vite.config.ts'),
    logLevel: 'error',
    build: { outDir: path.join(work, 'renderer'), emptyOutDir: true, sourcemap: false },
  });

  server = await startServer();

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
  context.setDefaultTimeout(SLOW);
  // Everything any page of this browser asks for, service workers included (WebSockets come per page).
  context.on('request', (request) => pageTraffic.push(request.url()));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  page = context.pages()[0] ?? (await context.newPage());
  watch(page);
  await page.goto(server.url);
});

after(async () => {
  if (skip) return;
  try {
    await context?.close();
  } finally {
    try {
      await server?.stop();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
});

// ── helpers ──────────────────────────────────────────────────────────────────

const editor = (p = page) => p.getByTestId('editor');
const ghost = () => page.getByTestId('suggestion');
const value = (p = page) => editor(p).inputValue();

async function waitForValue(expected: string, p = page): Promise<void> {
  try {
    await p.waitForFunction(
      (text) => (document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement | null)?.value === text,
      expected,
      { timeout: SLOW },
    );
  } catch {
    assert.equal(await value(p), expected, 'the editor text');
  }
}

/** Half of a UTF-16 surrogate pair on its own: what a character cut in the middle leaves behind. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

async function waitUntilGone(handle: ElementHandle): Promise<void> {
  await page.waitForFunction((el) => !el.isConnected, handle, { timeout: SLOW });
}

/** The engine has loaded the model (suggestions are only asked for once it is ready). */
async function waitForEngine(p = page): Promise<void> {
  await p.getByTestId('status-engine').filter({ hasText: 'Ready' }).waitFor({ timeout: 120_000 });
}

/** A fresh document with a title, its editor focused and empty. */
async function newDocument(title: string): Promise<void> {
  const items = page.getByTestId('doc-item');
  const count = await items.count();
  await page.getByTestId('new-doc').click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="doc-item"]').length === n + 1, count);
  await page.waitForFunction(() => {
    const text = document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement | null;
    return text?.value === '' && document.activeElement === text;
  });
  await page.getByTestId('doc-title').fill(title);
  await page.getByTestId('doc-title').press('Enter');
  await page.waitForFunction(() => document.activeElement?.getAttribute('data-testid') === 'editor');
}

/** Opens a document from the list and waits until its text is in the editor. */
async function openDocument(title: string, p = page): Promise<void> {
  await p.getByTestId('doc-item').filter({ hasText: title }).click();
  await p.waitForFunction(
    (t) => (document.querySelector('[data-testid="doc-title"]') as HTMLInputElement | null)?.value === t,
    title,
  );
}

/** Waits until the save status says the last edit is written ("Saved", with the time of a real save). */
async function waitForSaved(): Promise<void> {
  await page.waitForFunction(() => {
    const status = document.querySelector('[data-testid="save-state"]');
    return status?.textContent?.trim() === 'Saved' && status.getAttribute('title')?.startsWith('Saved at');
  });
}

/**
 * The ghost text once its stream has finished (the status bar stops saying "Thinking…"). With random
 * weights a suggestion may clean up to nothing or not suit the check at hand; then Esc and Ctrl+Space ask
 * again, as a user would. `accept` decides for the first `preferTries` attempts, then any suggestion will do.
 */
async function settledSuggestion(
  accept: (text: string) => boolean = () => true,
  { tries = 8, preferTries = tries }: { tries?: number; preferTries?: number } = {},
): Promise<{ text: string; handle: ElementHandle; rejected: string[] }> {
  const rejected: string[] = [];
  for (let attempt = 0; attempt < tries; attempt++) {
    let text: string | null = null;
    try {
      const found = await page.waitForFunction(
        () => {
          const shown = document.querySelector('[data-testid="suggestion"]')?.textContent ?? '';
          const busy = document.querySelector('[data-testid="status-latency"]')?.textContent?.includes('Thinking');
          return !busy && shown.trim() !== '' ? shown : null;
        },
        null,
        { timeout: 20_000 },
      );
      text = (await found.jsonValue()) as string;
    } catch {
      // Nothing worth showing came back this time.
    }
    if (text !== null && (accept(text) || attempt >= preferTries)) {
      const handle = (await ghost().elementHandle())!;
      // The shown text must still be this one (not replaced between the two reads).
      if ((await handle.textContent()) === text) {
        suggestionLog.push(`used ${JSON.stringify(text)}`);
        return { text, handle, rejected };
      }
    }
    suggestionLog.push(text === null ? 'none shown within 20 s' : `passed over ${JSON.stringify(text)}`);
    if (text !== null) {
      rejected.push(text);
      await page.keyboard.press('Escape');
    }
    await page.keyboard.press('Control+Space');
  }
  throw new Error(`no suitable suggestion after ${tries} tries; rejected: ${JSON.stringify(rejected)}`);
}

function reportSuggestions(t: TestContext): void {
  for (const line of suggestionLog.splice(0)) t.diagnostic(`suggestion: ${line}`);
}

// ── tests ────────────────────────────────────────────────────────────────────

test('the status bar shows the engine ready on the wasm backend', TEST, async () => {
  await waitForEngine();
  await page.getByTestId('status-backend').filter({ hasText: 'wasm' }).waitFor();
  assert.match((await page.getByTestId('status-backend').textContent()) ?? '', /wasm/);
  sampleServerSockets();
});

test('a pause shows a suggestion; Tab accepts it, Ctrl+→ accepts one word, Esc dismisses', TEST, async (t) => {
  t.after(() => reportSuggestions(t));
  await waitForEngine();
  await newDocument('Suggestions');
  await page.keyboard.type('The weather today is');
  const typed = await value();
  assert.equal(typed, 'The weather today is');

  // Tab: the whole ghost text goes into the editor and the ghost element goes away.
  const first = await settledSuggestion();
  await page.screenshot({ path: path.join(ARTIFACTS, 'editor-suggestion.png') });
  sampleServerSockets();
  await page.keyboard.press('Tab');
  await waitUntilGone(first.handle);
  await waitForValue(typed + first.text);
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'editor', 'Tab stays in the editor');

  // Ctrl+→: exactly the next word (leading spaces and glued punctuation included, by the renderer's rule);
  // the rest stays shown, or, when the word was all of it, the next suggestion comes after a pause.
  const beforeWord = await value();
  const several = await settledSuggestion((text) => text.trim().split(/\s+/).length >= 2, { preferTries: 4 });
  const word = several.text.slice(0, nextWordLength(several.text));
  const rest = several.text.slice(word.length);
  assert.ok(word.trim() !== '', `a word to accept in ${JSON.stringify(several.text)}`);
  await page.keyboard.press('Control+ArrowRight');
  await waitForValue(beforeWord + word);
  if (rest.trim() !== '') {
    await page.waitForFunction(
      (expected) => document.querySelector('[data-testid="suggestion"]')?.textContent === expected,
      rest,
      { timeout: 5_000 },
    );
  } else {
    await waitUntilGone(several.handle);
    await settledSuggestion();
  }

  // Esc: the ghost goes, the text stays, and nothing new is asked for until the next keystroke.
  const third = await settledSuggestion();
  const beforeEsc = await value();
  await page.keyboard.press('Escape');
  await waitUntilGone(third.handle);
  assert.equal(await value(), beforeEsc);
  // Proving that nothing comes takes a wait: three times the default 400 ms pause before a request.
  await page.waitForTimeout(1_200);
  assert.equal(await ghost().count(), 0, 'no suggestion after Esc without typing');
  assert.doesNotMatch((await page.getByTestId('status-latency').textContent()) ?? '', /Thinking/);
  assert.equal(await value(), beforeEsc);
});

test('typing the same characters as the suggestion keeps the rest; anything else removes it', TEST, async (t) => {
  t.after(() => reportSuggestions(t));
  await waitForEngine();
  await newDocument('Type-through');
  await page.keyboard.type('Once upon a time there');
  const base = await value();

  // Two characters to type through (not Tab or Enter, which are keys of their own) and something left after them.
  const { text } = await settledSuggestion((t) => {
    const [a, b] = Array.from(t);
    return a !== undefined && b !== undefined && !/[\t\r\n]/.test(a + b) && t.slice(a.length + b.length).trim() !== '';
  });
  const [a, b] = Array.from(text) as [string, string];
  await page.keyboard.type(a);
  await waitForValue(base + a);
  await page.waitForFunction((expected) => document.querySelector('[data-testid="suggestion"]')?.textContent === expected, text.slice(a.length));
  await page.keyboard.type(b);
  await waitForValue(base + a + b);
  const rest = text.slice(a.length + b.length);
  await page.waitForFunction((expected) => document.querySelector('[data-testid="suggestion"]')?.textContent === expected, rest);

  const handle = (await ghost().elementHandle())!;
  const other = rest.startsWith('q') ? 'z' : 'q';
  await page.keyboard.type(other);
  await waitUntilGone(handle);
  await waitForValue(base + a + b + other);
});

test('Chinese and emoji text is stored and shown intact, and suggestions still work after it', TEST, async (t) => {
  t.after(() => reportSuggestions(t));
  await waitForEngine();
  const title = 'CJK 你好';
  await newDocument(title);
  const chinese = '今天天气很好，阳光明媚。';
  const emoji = ' Emoji: 🙂👍🏽 café 👩‍💻 done';
  await page.keyboard.insertText(chinese);
  await page.keyboard.type(emoji);
  const written = chinese + emoji;
  await waitForValue(written);

  // Random weights can pick a lone byte of a multi-byte character, which decodes to U+FFFD as in Hugging
  // Face; such a suggestion is passed over. Eight in a row (which fails) would mean the decoding is broken.
  const { text } = await settledSuggestion((t) => !t.includes('\uFFFD'));
  await page.keyboard.press('Tab');
  await waitForValue(written + text);
  const final = await value();
  assert.ok(final.startsWith(written), 'the typed text is unchanged');
  assert.doesNotMatch(final, LONE_SURROGATE, 'no character split in half');
  assert.ok(!final.includes('\uFFFD'), 'no U+FFFD in the editor');

  await waitForSaved();
  knownDocuments.set(title, final);
  // The list shows the document by its title and the start of its text, as stored by the server.
  const item = page.getByTestId('doc-item').filter({ hasText: title });
  await item.filter({ hasText: chinese }).waitFor();
  assert.match((await item.textContent()) ?? '', /今天天气很好，阳光明媚。 Emoji: 🙂👍🏽/);
});

test('autosave keeps the text across a second window, a reload and a server restart', TEST, async () => {
  await waitForEngine();
  const title = 'Autosave';
  await newDocument(title);
  await page.keyboard.type('Dear diary,\nToday I wrote a letter. ');
  await page.keyboard.insertText('Ünïcödé ✓ 🙂 — 終わり');
  const expected = await value();
  assert.equal(expected, 'Dear diary,\nToday I wrote a letter. Ünïcödé ✓ 🙂 — 終わり');
  await waitForSaved();
  knownDocuments.set(title, expected);

  // A second window reads what the server stored, without the first one unloading (and flushing).
  const second = await context!.newPage();
  watch(second);
  try {
    await second.goto(server!.url);
    await openDocument(title, second);
    await waitForValue(expected, second);
  } finally {
    await second.close();
  }

  await page.reload();
  await openDocument(title);
  await waitForValue(expected);

  // A real restart: SIGTERM, a clean exit, a new process on the same data folder.
  sampleServerSockets();
  const old = server!;
  server = null;
  const exit = await old.stop();
  stoppedOrigins.add(old.origin);
  assert.equal(exit.code, 0, `the server exits cleanly on SIGTERM; output:\n${old.output()}`);
  assert.match(old.output(), /SIGTERM: closing/);

  server = await startServer();
  await page.goto(server.url);
  await waitForEngine();
  for (const [name, text] of knownDocuments) {
    await openDocument(name);
    await waitForValue(text);
  }
  sampleServerSockets();
});

test('a 1 MB paste keeps the editor responsive and is saved', TEST, async () => {
  await waitForEngine();
  await newDocument('Big paste');
  const line = (i: number) => `Paragraph ${i}: the river ran on past the mill, and nobody on the bank said a word.\n`;
  let big = '';
  for (let i = 0; big.length < 1_000_000; i++) big += line(i);
  // A real paste (Ctrl+V): one edit. Typing it in with insertText splits it into one edit per line and
  // takes minutes for a megabyte; the clipboard is Chromium's own in headless mode.
  await context!.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server!.origin });
  await page.evaluate((text) => navigator.clipboard.writeText(text), big);
  await page.keyboard.press('Control+V');
  const length = () => page.evaluate(() => (document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement).value.length);
  await page.waitForFunction((n) => (document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement).value.length === n, big.length);

  await page.keyboard.type('The end');
  await page.waitForFunction((n) => (document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement).value.length === n, big.length + 7);
  assert.equal(await length(), big.length + 7);
  assert.ok(await page.evaluate(() => (document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement).value.endsWith('said a word.\nThe end')));
  await waitForSaved();
  // The list's snippet comes back from the server's store: the megabyte arrived there.
  await page.getByTestId('doc-item').filter({ hasText: 'Big paste' }).filter({ hasText: 'Paragraph 0: the river' }).waitFor();
  sampleServerSockets();
});

test('no network traffic beyond 127.0.0.1: not from the page, not from the server', TEST, async () => {
  sampleServerSockets();

  // The page: every HTTP request and WebSocket went to one of this run's servers.
  assert.ok(pageTraffic.some((url) => /^http:\/\/127\.0\.0\.1:\d+\/assets\//.test(url)), 'the page loads were seen');
  assert.ok(pageTraffic.some((url) => url.startsWith('ws://127.0.0.1:')), 'the API WebSocket was seen');
  const foreign = pageTraffic.filter((url) => {
    const u = new URL(url);
    const origin = `http://${u.host}`;
    return !['http:', 'ws:'].includes(u.protocol) || u.hostname !== '127.0.0.1' || !serverOrigins.has(origin);
  });
  assert.deepEqual(foreign, [], 'requests to anything but the app server');

  // The server's sockets, sampled during the flow: listening on loopback, talking to loopback only.
  assert.ok(
    serverSockets.some((s) => s.state === 'LISTEN' && isLoopback(s.local)),
    `the listening socket was seen: ${serverSockets.map(describeSocket).join('; ')}`,
  );
  assert.ok(serverSockets.some((s) => s.state === 'ESTABLISHED'), 'the browser connection was seen');
  assert.deepEqual(serverSockets.filter(leavesTheMachine).map(describeSocket), []);

  // Every connect, UDP send and DNS lookup either process tried, in the main thread and the engine worker.
  const audit = readFileSync(netAuditFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: string; target: { host?: string; path?: string }; thread: number });
  assert.ok(audit.some((e) => e.kind === 'audit-loaded' && e.thread === 0), 'the audit ran in the main thread');
  assert.ok(audit.some((e) => e.kind === 'audit-loaded' && e.thread !== 0), 'the audit ran in the engine worker');
  const outbound = audit.filter(
    (e) => e.kind !== 'audit-loaded' && e.target.path === undefined && !['localhost', '127.0.0.1', '::1'].includes(e.target.host ?? ''),
  );
  assert.deepEqual(outbound, []);

  // And the page itself ran cleanly: no CSP violations, no errors (other than the old page failing to
  // reconnect to the server that was stopped on purpose).
  const problems = pageProblems.filter((p) => ![...stoppedOrigins].some((o) => p.includes(o.replace('http://', 'ws://'))));
  assert.deepEqual(problems, []);
});
