/** The reconstruction report types; they live in protocol/ptq.ts so results can carry them. */
export type { PtqLayerReport, PtqReport } from '../protocol/ptq.ts';
