/**
 * Serving the built renderer (dist/renderer) to the browser: file lookup that cannot leave the root,
 * content types, and the security headers every response carries.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

const MIME_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

export function contentType(file: string): string {
  return MIME_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The Content-Security-Policy of the renderer, shared by browser mode and Electron so that both run the
 * page under the same rules. `connectSrc` adds the WebSocket origin in browser mode (CSP `'self'` does not
 * cover `ws:` in every browser). Styles allow inline because Svelte sets `style` attributes from templates.
 */
export function contentSecurityPolicy(connectSrc: string[] = []): string {
  return [
    "default-src 'none'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${["'self'", ...connectSrc].join(' ')}`,
    "worker-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

export function securityHeaders(wsOrigins: string[]): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(wsOrigins),
    'X-Content-Type-Options': 'nosniff',
    // The page URL carries the access token: never send it anywhere as a Referer.
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
  };
}

/**
 * Vite names built assets by content hash, so they never change under the same name and may be cached
 * for good; everything else (index.html above all) is revalidated so a rebuild shows up on reload.
 */
export function cacheControl(urlPath: string): string {
  if (urlPath === '/' || urlPath.endsWith('.html')) return 'no-store';
  if (urlPath.startsWith('/assets/')) return 'public, max-age=31536000, immutable';
  return 'no-cache';
}

export type StaticLookup =
  | { kind: 'file'; file: string; size: number }
  | { kind: 'not-found' }
  | { kind: 'bad-request'; reason: string };

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * Maps a URL path to a regular file under `root`. The decoded path is resolved and must stay inside the
 * root both lexically and after following symlinks, so `..`, encoded `%2e%2e`, backslashes and links out of
 * the folder all end as "not found" or "bad request", never as a file elsewhere on disk.
 */
export async function lookupStatic(root: string, urlPath: string): Promise<StaticLookup> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return { kind: 'bad-request', reason: 'malformed percent-encoding in the path' };
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return { kind: 'bad-request', reason: 'invalid character in the path' };
  if (!decoded.startsWith('/')) return { kind: 'bad-request', reason: 'the path must start with "/"' };
  if (decoded.split('/').some((segment) => segment === '..')) return { kind: 'bad-request', reason: '".." in the path' };

  const relative = decoded === '/' ? 'index.html' : decoded.slice(1);
  const lexical = path.resolve(root, relative);
  if (!isInside(root, lexical)) return { kind: 'bad-request', reason: 'the path leaves the served folder' };
  try {
    const [realRoot, realFile] = await Promise.all([realpath(root), realpath(lexical)]);
    if (!isInside(realRoot, realFile)) return { kind: 'not-found' };
    const info = await stat(realFile);
    if (!info.isFile()) return { kind: 'not-found' };
    return { kind: 'file', file: realFile, size: info.size };
  } catch {
    return { kind: 'not-found' };
  }
}
