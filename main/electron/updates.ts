/**
 * Update checks of the packaged desktop app, through electron-updater. Off unless the user turns the
 * `checkForUpdates` setting on: a local-first app contacts no server by default. Written over injected
 * parts so that it can be tested without Electron; main.ts plugs in the real updater.
 */
import type { Settings } from '../ipc/contract.js';

/** The slice of electron-updater's `autoUpdater` used here. */
export interface UpdaterLike {
  /** Downloads a newer release in the background and tells the user once it is ready to install on quit. */
  checkForUpdatesAndNotify(): Promise<unknown>;
}

export interface UpdateCheckParts {
  /** Only a packaged app can replace itself. */
  isPackaged: boolean;
  /**
   * Whether the build carries an update feed: electron-builder writes resources/app-update.yml only when the
   * build has a `publish` setting (see docs/packaging.md), and electron-updater cannot check without it.
   */
  hasFeed: () => boolean;
  /** Loaded on the first check, so that a user who never turns checks on never loads the updater at all. */
  loadUpdater: () => Promise<UpdaterLike>;
  log: (message: string) => void;
  /** Between two checks while the app stays open (default 6 hours). */
  intervalMs?: number;
}

export type UpdateCheckState = 'off' | 'on' | 'unavailable';

export interface UpdateChecks {
  /** Follows the settings: starts checking (at once, then every interval) when turned on, stops when off. */
  apply(settings: Pick<Settings, 'checkForUpdates'>): void;
  state(): UpdateCheckState;
  stop(): void;
}

const SIX_HOURS_MS = 6 * 60 * 60 * 1000;

export function createUpdateChecks(parts: UpdateCheckParts): UpdateChecks {
  const intervalMs = parts.intervalMs ?? SIX_HOURS_MS;
  let timer: NodeJS.Timeout | null = null;
  let current: UpdateCheckState = 'off';
  let updater: Promise<UpdaterLike> | null = null;

  async function check(): Promise<void> {
    try {
      updater ??= parts.loadUpdater();
      await (await updater).checkForUpdatesAndNotify();
    } catch (err) {
      // A failed check (offline, feed down) must never take the app down; the next interval tries again.
      parts.log(`the update check failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  function stop(): void {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  function whyUnavailable(): string | null {
    if (!parts.isPackaged) return 'update checks are on, but only a packaged app can update itself (this is a development run)';
    if (!parts.hasFeed()) {
      return 'update checks are on, but this build has no update feed (it was built without a `publish` setting)';
    }
    return null;
  }

  return {
    apply({ checkForUpdates }) {
      if (!checkForUpdates) {
        if (current === 'on') parts.log('update checks are off');
        stop();
        current = 'off';
        return;
      }
      if (current !== 'off') return;
      const problem = whyUnavailable();
      if (problem !== null) {
        parts.log(problem);
        current = 'unavailable';
        return;
      }
      current = 'on';
      parts.log('update checks are on');
      void check();
      timer = setInterval(() => void check(), intervalMs);
      // A pending check must not keep the app alive on quit.
      timer.unref();
    },
    state: () => current,
    stop,
  };
}
