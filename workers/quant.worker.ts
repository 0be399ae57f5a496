/** The quantization worker: exposes the plain-object API (workers/api.ts) over comlink. */
import { expose } from 'comlink';
import { createQuantApi } from './api.ts';
import { holdLifeline } from './lifeline.ts';
import { installWorkerTestHooks } from './test-hooks.ts';

holdLifeline();
installWorkerTestHooks(); // only in a worker started with ?test-hooks
expose(createQuantApi());
