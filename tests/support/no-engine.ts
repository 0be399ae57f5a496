/**
 * What `onnxruntime-web` and `onnxruntime-node` resolve to in the unit tier (vitest.config.ts):
 * the fast tier opens no ORT session, so a test that tries is told where it belongs.
 * Importing a module that merely mentions the engine stays possible.
 */
const refuse = (): never => {
  throw new Error(
    'The unit tier (npm run test:fast) opens no onnxruntime session. Move this test to tests/integration (npm run test:integration).',
  );
};

export const InferenceSession = { create: refuse };
export class Tensor {
  constructor() {
    refuse();
  }
}
export const env = { versions: {}, wasm: {}, webgpu: {} };
export default { InferenceSession, Tensor, env };
