// `npm run site`: see src/cli/site.ts.
import { main } from '../src/cli/site.ts';

process.exitCode = await main(process.argv.slice(2));
