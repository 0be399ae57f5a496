// `npm run bench:transfer [-- DIST]`: see src/cli/transfer.ts. Builds dist/ first when it is missing.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { main } from '../src/cli/transfer.ts';

const dist = process.argv.slice(2).find((a) => !a.startsWith('-')) ?? 'dist';
if (!existsSync(`${dist}/sw.js`)) execFileSync('npx', ['vite', 'build', '--outDir', dist], { stdio: 'inherit' });
process.exitCode = await main(process.argv.slice(2));
