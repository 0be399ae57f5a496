/**
 * MobileNet-V2 deployed on onnxruntime's integer kernels (issue "simulated versus deployed"):
 * - the deployed evaluation is onnxruntime running model.int8.onnx with its default
 *   optimizations (compared with a session made directly through onnxruntime-web);
 * - the optimized session runs the planned QLinearConv/QLinearAdd/… kernels, with and
 *   without the probes that read codes back (read from onnxruntime-node's optimized graph;
 *   skipped when onnxruntime-node is not installed),
 *   and on wasm the deployed codes are the integer kernels' arithmetic and not those of the
 *   same file with the QDQ fusions off;
 * - the divergence finder names a layer whose bias was deliberately rounded differently;
 * - the deploy-exact simulation agrees with the deployment on ≥ 99% of images for TensorRT,
 *   FBGEMM and Academic W8A8;
 * - one output pixel computed by hand (integer-arithmetic.ts) is the kernel's output.
 * Wasm engine; 16 calibration / 32 evaluation images unless DEPLOY_CALIB / DEPLOY_EVAL say
 * otherwise (each preset's deployed model is evaluated once). Skips without ../shared/data.
 */
import * as ort from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import { DiskCropStore, loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { createNodeNativeEngine, createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import type { BackendName } from '../../src/lib/config/names.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import type { QuantizedRun } from '../../src/lib/experiment/types.ts';
import { batches } from '../../src/lib/experiment/batches.ts';
import { toDeployable } from '../../src/lib/export/deployable.ts';
import { buildIntegerQdq, type IntegerQdqModel } from '../../src/lib/export/integer-qdq.ts';
import { DEPLOY_EXACT_SESSION, deployExactFromDeployable } from '../../src/lib/export/deploy-exact.ts';
import { checkFusions, checkLayerArithmetic, evaluateDeployed } from '../../src/lib/export/deploy-check.ts';
import {
  deployedProbes,
  exactProbes,
  fetchCodes,
  findDivergence,
  quantizedTensors,
} from '../../src/lib/export/divergence.ts';
import { quantizeBias } from '../../src/lib/export/kernels.ts';
import { QDQ_SESSION_CONFIG } from '../../src/lib/onnx/fq-qdq.ts';
import { producerOf } from '../../src/lib/onnx/ir.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { agreement } from '../../src/lib/quant/metrics.ts';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';
import { optimizedGraph } from '../../src/cli/deploy.ts';
import { CLASS_INDEX, HAVE_SHARED_DATA, readModel, SAMPLE_DIR } from '../support/shared-data.ts';

// small on purpose (the file runs in CI): full-size figures come from `npm run bench:deploy`
const CALIB = Number(process.env.DEPLOY_CALIB ?? 16);
const EVAL = Number(process.env.DEPLOY_EVAL ?? 32);
const PRESETS: BackendName[] = ['tensorrt', 'fbgemm', 'academic'];

describe.skipIf(!HAVE_SHARED_DATA)('MobileNet-V2 W8A8 on onnxruntime integer kernels', () => {
  const runs = new Map<string, QuantizedRun>();
  /** the same presets with deployExact: the pipeline evaluates the deploy-exact graph */
  const exactRuns = new Map<string, QuantizedRun>();
  const models = new Map<string, IntegerQdqModel>();
  let engine: Engine;
  /** each preset's deployed evaluation, made once and shared by the tests that read it */
  const deployedEvals = new Map<string, ReturnType<typeof evaluateDeployed>>();
  const deployedOf = (backend: string) => {
    if (!deployedEvals.has(backend))
      deployedEvals.set(
        backend,
        evaluateDeployed(engine, runs.get(backend)!, serializeModel(models.get(backend)!.graph)),
      );
    return deployedEvals.get(backend)!;
  };

  beforeAll(async () => {
    engine = await createNodeWasmEngine(2);
    const dataset = await loadImageFolder(SAMPLE_DIR, CLASS_INDEX);
    const configs = [false, true].flatMap((deployExact) =>
      PRESETS.map((backend) =>
        resolveConfig({ backend, model: 'mobilenet-v2', calib: CALIB, eval: EVAL, seed: 0, deployExact }),
      ),
    );
    await runPipeline(
      configs,
      {
        engine,
        modelBytes: readModel(),
        model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
        dataset,
        cropStore: new DiskCropStore(),
      },
      {
        onQuantized: (run) => {
          if (run.config.deployExact) {
            exactRuns.set(run.config.backend, run);
            return;
          }
          runs.set(run.config.backend, run);
          models.set(run.config.backend, buildIntegerQdq(toDeployable(run)));
        },
      },
    );
  }, 3_600_000);

  it('the deployed evaluation is onnxruntime running model.int8.onnx with its default optimizations', async () => {
    const run = runs.get('tensorrt')!;
    const bytes = serializeModel(models.get('tensorrt')!.graph);
    const dep = await deployedOf('tensorrt');
    // the same file in a session made directly, with onnxruntime's defaults
    const session = await ort.InferenceSession.create(bytes);
    const preds: number[] = [];
    for (const b of batches(run.evaluation.crops, run.evaluation.spec, 16)) {
      const out = await session.run({ input: new ort.Tensor('float32', b.tensor.data, b.tensor.dims) });
      const logits = out.output.data as Float32Array;
      for (let r = 0; r < b.rows.length; r++) {
        const row = logits.subarray(r * 1000, (r + 1) * 1000);
        preds.push(row.indexOf(Math.max(...row)));
      }
    }
    await session.release();
    expect(Array.from(dep.preds)).toEqual(preds);
    expect(dep.agreement).toBe(agreement(dep.preds, run.evaluation.preds));
  }, 600_000);

  it('the optimized session runs the planned integer kernels (onnxruntime-node)', async (ctx) => {
    let native: Engine;
    try {
      native = await createNodeNativeEngine(2);
    } catch {
      ctx.skip();
      return;
    }
    for (const backend of PRESETS) {
      const m = models.get(backend)!;
      const check = checkFusions(m.plan, await optimizedGraph(native, serializeModel(m.graph)));
      expect(check.missing).toEqual([]);
      expect(check.unexpected).toEqual([]);
      const conv = check.kernels.find((k) => k.kernel === 'QLinearConv')!;
      expect(conv.found).toBe(conv.expected);
      expect(conv.found).toBeGreaterThanOrEqual(backend === 'academic' ? 40 : 52);
    }
    // the probes that read the codes back (a second DequantizeLinear per QuantizeLinear) keep every fusion
    const m = models.get('tensorrt')!;
    const probed = checkFusions(m.plan, await optimizedGraph(native, serializeModel(deployedProbes(m).graph)));
    expect(probed.missing).toEqual([]);
  }, 600_000);

  it('on wasm the deployed codes are the integer kernels’ arithmetic, not those of the unfused file', async () => {
    const run = runs.get('fbgemm')!;
    const m = models.get('fbgemm')!;
    const data = { crops: run.evaluation.crops.slice(0, 1), spec: run.evaluation.spec };
    const scales = new Map(quantizedTensors(m.plan, run.graph).map((t) => [t.tensor, t.q.scale] as const));
    const fused = await fetchCodes(engine, deployedProbes(m), data, { scales });
    const unfused = await fetchCodes(engine, deployedProbes(m), data, {
      scales,
      session: { config: QDQ_SESSION_CONFIG },
    });
    const exact = await fetchCodes(engine, exactProbes(deployExactFromDeployable(toDeployable(run), m.plan)), data, {
      session: DEPLOY_EXACT_SESSION,
    });
    let differFromUnfused = 0;
    for (const [t, codes] of fused) {
      expect(Array.from(codes), t).toEqual(Array.from(exact.get(t)!));
      const u = unfused.get(t)!;
      for (let i = 0; i < codes.length; i++) if (codes[i] !== u[i]) differFromUnfused++;
    }
    expect(differFromUnfused).toBeGreaterThan(0);
  }, 600_000);

  it('the divergence finder names a layer whose bias is rounded differently', async () => {
    const run = runs.get('tensorrt')!;
    const m = models.get('tensorrt')!;
    const d = toDeployable(run);
    const layer = m.plan.layers.filter((l) => l.kernel === 'QLinearConv')[20];
    // plant: this layer's bias rounded on a grid of 4 output steps instead of s_x·s_w
    const graph = { ...m.graph, initializers: new Map(m.graph.initializers) };
    const conv = graph.nodes.find((n) => n.name === layer.node)!;
    const biasCodes = producerOf(graph).get(conv.inputs[2])!.inputs[0];
    const step = 4 * layer.output!.scale;
    const planted = Int32Array.from(layer.bias!.float, (b, c) =>
      quantizeBias(roundHalfToEven(b / step) * step, layer.inputs[0].scale, layer.weight!.qparams.scale[c]),
    );
    graph.initializers.set(biasCodes, { ...graph.initializers.get(biasCodes)!, data: planted });
    const div = await findDivergence({
      engine,
      run,
      deployed: { ...m, graph },
      reference: { kind: 'deploy-exact', model: deployExactFromDeployable(d, m.plan) },
      images: 1,
    });
    expect(div.origin?.layer).toBe(layer.node);
    expect(div.first?.layer).toBe(layer.node);
    expect(div.first?.reasons[0].kind).toBe('bias');
    expect(div.first?.reasons[0].text).toMatch(/bias rounded to int32: channel \d+/);
    // every earlier tensor is identical
    const at = div.tensors.findIndex((t) => t.layer === layer.node);
    expect(div.tensors.slice(0, at).every((t) => t.differing === 0)).toBe(true);
  }, 600_000);

  for (const backend of PRESETS) {
    it(`${backend}: the deploy-exact simulation (config deployExact) agrees with the deployment on ≥ 99% of images`, async () => {
      const run = runs.get(backend)!;
      const dep = await deployedOf(backend);
      // the pipeline's own evaluation of the deployExact config, on the same images
      const exact = exactRuns.get(backend)!;
      expect(exact.evaluation.crops).toEqual(run.evaluation.crops);
      const a = agreement(exact.evaluation.preds, dep.preds);
      console.log(
        `${backend} W8A8 (${CALIB}/${EVAL}, wasm): simulated ${(100 * dep.agreement).toFixed(1)}% agreement with the deployment, deploy-exact ${(100 * a).toFixed(1)}%`,
      );
      expect(a).toBeGreaterThanOrEqual(0.99);
    }, 600_000);
  }

  it('one output pixel computed by hand is the output of the QLinearConv kernel, for every pixel of a layer', async () => {
    // block 1 · depthwise 3×3 of FBGEMM, its ReLU6 absorbed into the uint8 output
    const c = await checkLayerArithmetic(engine, runs.get('fbgemm')!, models.get('fbgemm')!, 'Conv_2');
    expect(c.outputs).toBe(32 * 112 * 112);
    expect(c.floatMatches).toBe(c.outputs);
    // integer-only requantization rounds twice (high multiply, then shift): one step off near a half step
    expect(c.fixedPointMatches / c.outputs).toBeGreaterThan(0.99);
    expect(c.fixedPointMaxSteps).toBe(1);
    const p = c.example;
    expect(p.terms).toHaveLength(9);
    expect(p.accumulator).toBe(p.terms.reduce((a, t) => a + t.product, 0));
    expect(p.total).toBe(p.accumulator + p.bias);
    expect(p.fixedPoint.m0).toBeGreaterThanOrEqual(2 ** 30);
  }, 600_000);
});
