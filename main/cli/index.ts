import { main } from './run.js';

const code = await main(process.argv.slice(2));
// Let stdout drain before exiting: a large --json output must not be cut off.
process.stdout.write('', () => process.exit(code));
