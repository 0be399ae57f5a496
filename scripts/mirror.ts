// `npm run mirror`: see src/cli/mirror.ts.
import { main } from '../src/cli/mirror.ts';

process.exitCode = await main(process.argv.slice(2));
