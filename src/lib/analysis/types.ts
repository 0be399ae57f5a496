/**
 * The analysis result shapes live in protocol/analysis.ts (they cross the worker
 * boundary and are stored); re-exported here for the analysis modules.
 */
export type * from '../protocol/analysis.ts';
