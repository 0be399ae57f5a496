// `npm run bench:transfer [-- DIST]`: see src/cli/transfer.ts. Builds dist/ first when it is missing.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { main } from '../src/cli/transfer.ts';
import { parseCliOrExit } from '../src/cli/options.ts';
import { BENCH_TRANSFER_CLI } from './cli-specs.ts';

const dist = parseCliOrExit(BENCH_TRANSFER_CLI).positionals[0] ?? 'dist';
if (!existsSync(`${dist}/sw.js`)) execFileSync('npx', ['vite', 'build', '--outDir', dist], { stdio: 'inherit' });
process.exitCode = await main([dist]);
