// `npm run bench`: see src/cli/bench.ts.
import { main } from '../src/cli/bench.ts';

process.exitCode = await main(process.argv.slice(2), { entry: import.meta.filename });
