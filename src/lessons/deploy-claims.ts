/**
 * What a lesson run with `deployInteger` measures, from the pipeline's QuantizedRun: the
 * integer export on onnxruntime's integer kernels (top-1, agreement with the simulation),
 * the deploy-exact simulation's agreement with it, and the first depthwise convolution
 * (block 1's on MobileNet-V2) recomputed by hand against the kernel's codes, the layer the
 * app's check shows. The runner (run-claims.ts) calls it from the pipeline's onQuantized hook.
 */
import type { Engine } from '../lib/engine/types.ts';
import { evaluate } from '../lib/experiment/evaluate.ts';
import type { QuantizedRun } from '../lib/experiment/types.ts';
import { arithmeticLayer, checkLayerArithmetic, evaluateDeployed } from '../lib/export/deploy-check.ts';
import { QpError } from '../lib/util/errors.ts';
import { DEPLOY_EXACT_SESSION, deployExactFromDeployable } from '../lib/export/deploy-exact.ts';
import { toDeployable } from '../lib/export/deployable.ts';
import { buildIntegerQdq } from '../lib/export/integer-qdq.ts';
import { serializeModel } from '../lib/onnx/model.ts';
import { agreement } from '../lib/quant/metrics.ts';
import type { IntegerClaim } from './claims.ts';

export async function integerClaim(engine: Engine, run: QuantizedRun): Promise<IntegerClaim> {
  const d = toDeployable(run);
  const model = buildIntegerQdq(d);
  const dep = await evaluateDeployed(engine, run, serializeModel(model.graph));
  const exact = await engine.createSession(
    serializeModel(deployExactFromDeployable(d, model.plan).graph),
    DEPLOY_EXACT_SESSION,
  );
  let exactPreds: Int32Array;
  try {
    const { crops, labels, spec } = run.evaluation;
    exactPreds = (await evaluate(exact, crops, labels, spec, { batchSize: 32 })).preds;
  } finally {
    await exact.release();
  }
  // the layer the app's check shows by hand (on MobileNet-V2: block 1 · depthwise 3×3, Conv_2)
  const name = arithmeticLayer(model.plan, run.graph);
  if (!name) throw new QpError('INTERNAL', 'The deployment runs no integer convolution to recompute by hand.');
  const layer = await checkLayerArithmetic(engine, run, model, name);
  return {
    top1: dep.top1,
    agreement: dep.agreement,
    exactAgreement: agreement(exactPreds, dep.preds),
    pixelMatch: layer.floatMatches / layer.outputs,
    fixedPointMatch: layer.fixedPointMatches / layer.outputs,
  };
}
