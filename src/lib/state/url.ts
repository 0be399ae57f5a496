/**
 * The URL codec lives in experiment/url.ts, below the CLI, so `npm run bench` writes the
 * same links the app reads; this module keeps the app's imports where they were.
 */
export * from '../experiment/url.ts';
