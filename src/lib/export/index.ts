/**
 * Public surface of the export layer: simulated run → QDQ ONNX (as simulated and for integer
 * kernels), range files, zip; the deployed evaluation, the deploy-exact simulation and the
 * divergence finder.
 * Re-exports only; no logic here.
 */
export * from './deployable.ts';
export * from './opset.ts';
export * from './qdq.ts';
export * from './ranges.ts';
export * from './bundle.ts';
export * from './verify.ts';
export * from './kernels.ts';
export * from './integer-plan.ts';
export * from './integer-qdq.ts';
export * from './integer-arithmetic.ts';
export * from './deploy-exact.ts';
export * from './deploy-check.ts';
export * from './deploy-record.ts';
export * from './divergence.ts';
