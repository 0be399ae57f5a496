// `npm run bench:calib`: the full-size calibration figures of issue 12; see src/cli/bench-calib.ts.
import { main } from '../src/cli/bench-calib.ts';

process.exitCode = await main(process.argv.slice(2));
