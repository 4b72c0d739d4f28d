// The module hooks of no-typescript.mjs (they run in the loader's own thread).
import { appendFileSync } from 'node:fs';

let log = null;

export function initialize(data) {
  log = data?.log ?? null;
}

export async function resolve(specifier, context, next) {
  if (specifier === 'tsx' || specifier.startsWith('tsx/')) {
    throw new Error(`no-typescript guard: '${specifier}' (the TypeScript loader) imported from ${context.parentURL}`);
  }
  const resolved = await next(specifier, context);
  if (log !== null) appendFileSync(log, `${resolved.url}\n`);
  if (/\.[cm]?tsx?$/.test(resolved.url.split(/[?#]/)[0])) {
    throw new Error(`no-typescript guard: TypeScript source ${resolved.url} imported from ${context.parentURL}`);
  }
  return resolved;
}
