/** Keyboard shortcuts of the editor, as data: which key press means which suggestion command. */

export type EditorCommand = 'acceptAll' | 'acceptWord' | 'dismiss' | 'next' | 'previous' | 'requestNow';

/** The parts of a KeyboardEvent the mapping looks at. */
export interface KeyPress {
  key: string;
  code: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  shiftKey: boolean;
  isComposing?: boolean;
}

export function isMacPlatform(platform: string): boolean {
  return /mac|iphone|ipad/i.test(platform);
}

/**
 * The command a key press asks for, or null. The editor only takes over the key (preventDefault) when the
 * command applies, e.g. Tab accepts only while a suggestion is shown and otherwise moves focus as usual.
 */
export function commandForKey(e: KeyPress, isMac: boolean): EditorCommand | null {
  if (e.isComposing) return null;
  const primary = isMac ? e.metaKey : e.ctrlKey;
  const other = isMac ? e.ctrlKey : e.metaKey;
  const noModifiers = !e.ctrlKey && !e.metaKey && !e.altKey && !e.shiftKey;
  if (e.key === 'Tab' && noModifiers) return 'acceptAll';
  if (e.key === 'Escape' && noModifiers) return 'dismiss';
  if (e.key === 'ArrowRight' && primary && !other && !e.altKey && !e.shiftKey) return 'acceptWord';
  // By physical key: Alt+] types other characters on some layouts (e.g. '‘' on a Mac).
  if (e.altKey && !e.ctrlKey && !e.metaKey && e.code === 'BracketRight') return 'next';
  if (e.altKey && !e.ctrlKey && !e.metaKey && e.code === 'BracketLeft') return 'previous';
  if (e.ctrlKey && !e.metaKey && !e.altKey && (e.code === 'Space' || e.key === ' ')) return 'requestNow';
  return null;
}
