/**
 * `npm run web -- [--port P] [--data DIR] [--model DIR] [--backend B]`: Inkling in the browser.
 * Prints the URL to open (token included) on a line of its own and runs until SIGINT/SIGTERM.
 */
import { pathToFileURL } from 'node:url';
import { createApp, parseAppArgs, resolveConfig, UsageError } from '../app.js';
import { rendererIsBuilt, startServer, DEFAULT_STATIC_DIR } from './server.js';

const USAGE = `usage: npm run web -- [--port P] [--data DIR] [--model DIR] [--backend B]
  --port P      port on 127.0.0.1 (default 0: any free port)
  --data DIR    where documents and settings live (env INKLING_DATA_DIR)
  --model DIR   a GPT-2 model folder (env INKLING_MODEL; default: the bundled model)
  --backend B   TensorFlow.js backend to prefer: wasm, cpu, tensorflow (env INKLING_BACKEND)`;

/** The renderer folder to serve; INKLING_RENDERER_DIR points at another build (tests, a packaged copy). */
export function staticDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.INKLING_RENDERER_DIR || DEFAULT_STATIC_DIR;
}

export async function runWebServer(argv: string[]): Promise<void> {
  let flags;
  try {
    flags = parseAppArgs(argv, { strict: true });
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (flags.help) {
    console.log(USAGE);
    return;
  }

  const config = resolveConfig(flags);
  const app = await createApp(config);
  const staticDir = staticDirFromEnv();
  let server;
  try {
    server = await startServer({ handlers: app.handlers, events: app.events, port: flags.port ?? 0, staticDir });
  } catch (err) {
    await app.close();
    throw err;
  }

  // Signal handlers first: whoever reads the URL line may stop the server at once.
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second Ctrl+C means "now": skip the graceful path.
      process.exit(130);
    }
    stopping = true;
    console.log(`\n${signal}: closing…`);
    try {
      await server.close();
      await app.close();
    } catch (err) {
      console.error('inkling: closing failed:', err);
      process.exitCode = 1;
    }
    process.exit();
  };
  process.on('SIGINT', (s) => void stop(s));
  process.on('SIGTERM', (s) => void stop(s));

  console.log(`Inkling (browser mode) — data: ${config.dataDir}; model: ${config.modelDir ?? 'none'}`);
  if (!rendererIsBuilt(staticDir)) {
    console.log(`The renderer is not built (${staticDir} has no index.html): run \`npm run build:renderer\`, then reload.`);
  }
  const engine = await app.handlers.getEngineStatus();
  if (engine.state === 'error' && engine.error) console.log(`Suggestions are off: ${engine.error.message}`);
  console.log('Open this address in your browser (it carries the access token; keep it private):');
  console.log(server.url);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runWebServer(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof UsageError ? err.message : `inkling: ${(err as Error).message ?? err}`);
    process.exit(1);
  });
}
