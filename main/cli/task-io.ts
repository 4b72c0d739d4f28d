/** What the self-parsing commands share: output streams (and a stop signal), error handling. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './args.js';

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  signal?: AbortSignal;
}

export const PROCESS_IO: CliIo = { stdout: process.stdout, stderr: process.stderr };

/**
 * Parses `args` strictly and runs `body`; prints usage for --help, and any error as one line on stderr
 * (the stack with --verbose). Exit code: 0, 2 for a usage error, 1 for any other failure.
 */
export async function runTask<O extends ParseArgsConfig['options']>(
  name: string,
  usage: string,
  options: O,
  args: string[],
  io: CliIo,
  body: (values: ReturnType<typeof parseArgs<{ options: O; strict: true }>>['values']) => Promise<number>,
): Promise<number> {
  const verbose = args.includes('--verbose');
  try {
    let values;
    try {
      values = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' }, verbose: { type: 'boolean' } } as O, strict: true, allowPositionals: false }).values;
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if ((values as Record<string, unknown>).help) {
      io.stdout.write(usage + '\n');
      return 0;
    }
    return await body(values as never);
  } catch (error) {
    const e = error as Error;
    if (verbose && e.stack) io.stderr.write(e.stack + '\n');
    else io.stderr.write(`inkling ${name}: ${e.message.split('\n')[0]}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

export function required(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new UsageError(what);
  return value;
}
