#!/usr/bin/env node
// Builds the engine's native kernels (worker/model/kernels/native/gemm.c) with node-gyp and puts the
// addon beside the module that loads it: worker/model/kernels/native/inkling-native.node (not committed).
//
//   node scripts/build-native.mjs              builds; exits 1 when it cannot
//   node scripts/build-native.mjs --optional   npm's postinstall: a failure is a warning, and the engine
//                                              runs on its WebAssembly kernels alone
//
// INKLING_NODE_GYP=command uses another node-gyp; INKLING_NATIVE=off builds nothing.
//
// It is an N-API addon, so one build serves Node and Electron alike (no rebuild against Electron's ABI).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const nativeDir = path.join(root, 'worker', 'model', 'kernels', 'native');
export const nativeAddon = path.join(nativeDir, 'inkling-native.node');
const optional = process.argv.includes('--optional');

/**
 * node-gyp's entry: INKLING_NODE_GYP when set (a command), else the copy npm brings (npm names it to its
 * scripts), else one beside npm or on the PATH.
 */
function nodeGyp() {
  if (process.env.INKLING_NODE_GYP) return [process.env.INKLING_NODE_GYP];
  if (process.env.npm_config_node_gyp) return [process.execPath, process.env.npm_config_node_gyp];
  const besideNpm = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(besideNpm) ? [process.execPath, besideNpm] : ['node-gyp'];
}

/**
 * Where node-gyp finds Node's headers: npm's setting when it runs this, else the running Node's own when they
 * are installed beside it (Debian's nodejs), else node-gyp's default (it downloads them).
 */
function nodeDirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.join(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

function build() {
  if (process.env.INKLING_NATIVE === 'off') return 'INKLING_NATIVE=off';
  const [command, ...args] = nodeGyp();
  const started = performance.now();
  const result = spawnSync(command, [...args, 'rebuild', '--release', ...nodeDirArgs()], { cwd: nativeDir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    // An addon from an earlier build stays (its kernels still give the WebAssembly kernels' bits); only a build
    // that succeeds replaces it.
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`node-gyp failed (${result.error?.message ?? `exit ${result.status}`})${output ? `:\n${output}` : ''}`);
  }
  // Through a temporary name: a process killed while copying leaves no half-written addon to load.
  const partial = `${nativeAddon}.partial`;
  copyFileSync(path.join(nativeDir, 'build', 'Release', 'inkling_native.node'), partial);
  renameSync(partial, nativeAddon);
  rmSync(path.join(nativeDir, 'build'), { recursive: true, force: true });
  return `built ${path.relative(root, nativeAddon)} in ${((performance.now() - started) / 1000).toFixed(1)} s`;
}

try {
  console.log(`native kernels: ${build()}`);
} catch (error) {
  const message = `native kernels not built: ${error.message}`;
  if (!optional) {
    console.error(message);
    process.exit(1);
  }
  console.warn(`${message}\n(Inkling works without them: its matrix products then run on the WebAssembly kernels, prompts about half as fast.)`);
}
