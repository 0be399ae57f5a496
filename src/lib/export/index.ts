/**
 * Public surface of the export layer: simulated run → QDQ ONNX, range files, zip.
 * Re-exports only; no logic here.
 */
export * from './deployable.ts';
export * from './opset.ts';
export * from './qdq.ts';
export * from './ranges.ts';
export * from './bundle.ts';
export * from './verify.ts';
