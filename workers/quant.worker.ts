/** The quantization worker: exposes the plain-object API (workers/api.ts) over comlink. */
import { expose } from 'comlink';
import { createQuantApi } from './api.ts';

expose(createQuantApi());
