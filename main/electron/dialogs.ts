/**
 * The native open dialog behind `pickImportSource`, over injected parts (Electron's `dialog`, a way from the
 * IPC event to the calling window) so that it can be tested without Electron. main.ts plugs the real ones in.
 */
import type { OpenDialogOptions } from 'electron';
import type { ImportSourceKind } from '../ipc/contract.js';
import { ApiError } from '../ipc/errors.js';

/** The slice of Electron's `dialog` used here: the window-modal form, and the free one for no window. */
export interface DialogLike<W> {
  showOpenDialog(window: W, options: OpenDialogOptions): Promise<{ canceled: boolean; filePaths: string[] }>;
  showOpenDialog(options: OpenDialogOptions): Promise<{ canceled: boolean; filePaths: string[] }>;
}

export interface ImportPickerParts<E, W> {
  dialog: DialogLike<W>;
  /** The window that sent the call (Electron: `BrowserWindow.fromWebContents(event.sender)`), null if it is gone. */
  windowOf(event: E): W | null;
}

const WEIGHTS_FILTER = { name: 'GPT-2 weights (.safetensors)', extensions: ['safetensors'] };

/** The dialog for one kind of source; no kind: folders and weights files together (see `ImportSourceKind`). */
export function importDialogOptions(kind: ImportSourceKind | undefined): OpenDialogOptions {
  const base = { title: 'Import a GPT-2 checkpoint', buttonLabel: 'Import' };
  if (kind === 'folder') return { ...base, properties: ['openDirectory'] };
  if (kind === 'file') return { ...base, properties: ['openFile'], filters: [WEIGHTS_FILTER] };
  return { ...base, properties: ['openDirectory', 'openFile'], filters: [WEIGHTS_FILTER] };
}

function sourceKind(value: unknown): ImportSourceKind | undefined {
  // null as well as undefined: an omitted argument may arrive as null.
  if (value === undefined || value === null) return undefined;
  if (value === 'folder' || value === 'file') return value;
  throw new ApiError('INVALID_INPUT', `kind must be "folder" or "file", got ${JSON.stringify(value)?.slice(0, 40) ?? typeof value}`);
}

/**
 * `pickImportSource` for the desktop app: opens the dialog over the calling window (modal to it) and resolves
 * with the chosen path, or null when the user cancels. One dialog at a time: a second call while one is
 * open is refused rather than stacking dialogs.
 */
export function createImportSourcePicker<E, W>(parts: ImportPickerParts<E, W>): (event: E, kind?: unknown) => Promise<string | null> {
  let open = false;
  return async (event, kindArg) => {
    const options = importDialogOptions(sourceKind(kindArg));
    if (open) throw new ApiError('BUSY', 'the import dialog is open already');
    open = true;
    try {
      const window = parts.windowOf(event);
      const result = window === null ? await parts.dialog.showOpenDialog(options) : await parts.dialog.showOpenDialog(window, options);
      return result.canceled || result.filePaths.length === 0 ? null : result.filePaths[0]!;
    } finally {
      open = false;
    }
  };
}
