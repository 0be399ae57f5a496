/**
 * Public surface of the pure data modules (decode, preprocess, data sets, crops).
 * Must not re-export Node-only code: import dataset.node.ts directly from Node.
 */
export * from './types.ts';
export * from './decode.ts';
export * from './preprocess.ts';
export * from './dataset.ts';
export * from './crops.ts';
