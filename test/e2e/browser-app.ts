/**
 * The shared set-up of the end-to-end files that drive one page of the app: build the current renderer, start
 * the real browser-mode server as a child process, open Debian's Chromium on its URL, and tear all of it down
 * afterwards, whatever happened.
 */
import { before, after } from 'node:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { startInkling, type InklingServer } from './server-process.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TINY_MODEL = path.join(path.resolve(repoRoot, '..', 'shared'), 'fixtures', 'tiny-gpt2');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Playwright's waits on a loaded 2-core machine. */
export const SLOW = 60_000;

/** Why the browser tests cannot run here, or false when they can. */
export const skipReason: string | false = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`
  : !existsSync(path.join(TINY_MODEL, 'model.safetensors'))
    ? `no model fixture at ${TINY_MODEL}`
    : false;

export interface BrowserAppOptions {
  /** Names the temporary folder. */
  label: string;
  /** null starts the server with no --model. */
  modelDir: string | null;
  viewport?: { width: number; height: number };
  /** Page errors are pushed here, for the test to assert there were none. */
  problems: string[];
}

/** Registers node:test hooks that open the app before the file's tests and close it after; `onOpen` gets the page. */
export function useBrowserApp(options: BrowserAppOptions, onOpen: (page: Page, server: InklingServer) => void): void {
  let work: string;
  let server: InklingServer | null = null;
  let context: BrowserContext | null = null;

  before(async () => {
    if (skipReason) return;
    work = mkdtempSync(path.join(tmpdir(), `inkling-e2e-${options.label}-`));
    const { build } = await import('vite');
    await build({
      configFile: path.join(repoRoot, 'renderer', 'vite.config.ts'),
      logLevel: 'error',
      build: { outDir: path.join(work, 'renderer'), emptyOutDir: true, sourcemap: false },
    });
    server = await startInkling({
      repoRoot,
      dataDir: path.join(work, 'data'),
      modelDir: options.modelDir,
      rendererDir: path.join(work, 'renderer'),
      netAuditFile: path.join(work, 'net-audit.jsonl'),
    });
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: options.viewport ?? { width: 1280, height: 800 },
    });
    context.setDefaultTimeout(SLOW);
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => options.problems.push(`page error: ${err.message}`));
    await page.goto(server.url);
    onOpen(page, server);
  });

  after(async () => {
    if (skipReason) return;
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
}
