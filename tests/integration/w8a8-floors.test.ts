/**
 * Every W8A8 configuration bounded: each backend preset × each activation observer at
 * 8 bits, on the real MobileNet-V2, must stay within a stated distance of FP32. The
 * best-configuration test in mobilenet-v2.test.ts cannot see one backend collapsing
 * (a wrong activation-sign choice once took OpenVINO W8A8 from 82% to 0% unnoticed).
 *
 * One runPipeline call: FP32 evaluation, calibration statistics (histograms
 * included) and weight quantization are shared by all 72 configs, so only the
 * fake-quant evaluations grow with the matrix. To keep CI short this runs on 32
 * calibration and 32 evaluation images (the full-size figures are `npm run bench`'s);
 * the floors are paired with FP32 on the same images, and were set from measured
 * numbers with room for run-to-run noise (see the constants).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DiskCropStore, loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import type { ExperimentResult } from '../../src/lib/experiment/types.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import { BACKEND_NAMES, OBSERVER_NAMES } from '../../src/lib/config/names.ts';
import { CLASS_INDEX, HAVE_SHARED_DATA, readModel, SAMPLE_DIR } from '../support/shared-data.ts';
import { figuresEngine } from '../support/test-engine.ts';

/**
 * Floors, from one measured run of this exact matrix (calib 32, eval 32, seed 1; FP32
 * 90.6% on these 32 images; node engine, same graphs): every preset × observer except
 * the two groups below lost at most 12.5 points and kept >= 87.5% of FP32 decisions.
 * Vitis (power-of-two scales everywhere) measured 53–63% (drop 28–38 points,
 * agreement 59–69%). ClipStd follows MQBench (its range widens min/max, never clips): on the
 * node engine it measured drops of 3–9 points (Vitis 25) on these images.
 */
const FLOOR = { maxDrop: 0.16, minAgreement: 0.8 }; // 5 of 32 images of slack
const FLOORS: Partial<Record<string, { maxDrop: number; minAgreement: number }>> = {
  vitis: { maxDrop: 0.45, minAgreement: 0.5 },
};

const CALIB = 32;
const EVAL = 32;

describe.skipIf(!HAVE_SHARED_DATA)('every W8A8 preset × observer on the real MobileNet-V2', () => {
  let results: ExperimentResult[] = [];
  let seconds = 0;

  beforeAll(async () => {
    const dataset = await loadImageFolder(SAMPLE_DIR, CLASS_INDEX);
    const engine = await figuresEngine(2);
    const configs = BACKEND_NAMES.flatMap((backend) =>
      OBSERVER_NAMES.map((aObserver) =>
        resolveConfig({
          backend,
          aObserver,
          wBits: 8,
          aBits: 8,
          model: 'mobilenet-v2',
          calib: CALIB,
          eval: EVAL,
          seed: 1,
        }),
      ),
    );
    const t0 = performance.now();
    results = await runPipeline(configs, {
      engine,
      modelBytes: readModel(),
      model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
      dataset,
      cropStore: new DiskCropStore(),
    });
    seconds = (performance.now() - t0) / 1000;
    console.log(
      `${results.length} W8A8 configs on ${EVAL} images in ${seconds.toFixed(0)} s (FP32 top-1 ${(100 * results[0].fp32.top1).toFixed(1)}%)`,
    );
    for (const r of results) {
      console.log(
        `  ${r.config.backend.padEnd(9)} ${r.config.aObserver.padEnd(12)} top-1 ${(100 * r.quant.top1).toFixed(1)}%  drop ${(100 * (r.fp32.top1 - r.quant.top1)).toFixed(1)}  agreement ${(100 * r.agreement).toFixed(1)}%`,
      );
    }
  }, 3_600_000);

  it('runs the whole matrix, 8 bits everywhere, on the same images', () => {
    expect(results).toHaveLength(BACKEND_NAMES.length * OBSERVER_NAMES.length);
    for (const r of results) {
      expect([r.config.wBits, r.config.aBits]).toEqual([8, 8]);
      expect(r.images).toEqual({ calib: CALIB, eval: EVAL, skipped: 0 });
      expect(r.fp32).toEqual(results[0].fp32);
    }
  });

  for (const backend of BACKEND_NAMES) {
    const f = FLOORS[backend] ?? FLOOR;
    it(`${backend}: every activation observer stays within ${(100 * f.maxDrop).toFixed(0)} points of FP32 and keeps ${100 * f.minAgreement}% of its decisions`, () => {
      const mine = results.filter((r) => r.config.backend === backend);
      expect(mine).toHaveLength(OBSERVER_NAMES.length);
      const bad = mine
        .filter((r) => r.fp32.top1 - r.quant.top1 > f.maxDrop || r.agreement < f.minAgreement)
        .map(
          (r) =>
            `${r.config.aObserver}: top-1 ${(100 * r.quant.top1).toFixed(1)}% (FP32 ${(100 * r.fp32.top1).toFixed(1)}%), agreement ${(100 * r.agreement).toFixed(1)}%`,
        );
      expect(bad).toEqual([]);
    });
  }
});
