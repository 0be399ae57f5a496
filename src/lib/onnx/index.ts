/**
 * Public surface of the graph layer (parse/serialize, IR helpers, transforms).
 * Re-exports only; no logic here.
 */
export * from './ir.ts';
export * from './model.ts';
export * from './fold-bn.ts';
export * from './placement.ts';
export * from './fake-quant.ts';
export * from './calibration.ts';
