// `npm run lessons`: see src/cli/lessons.ts.
import { main } from '../src/cli/lessons.ts';

process.exitCode = await main(process.argv.slice(2));
