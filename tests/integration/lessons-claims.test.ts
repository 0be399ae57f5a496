/**
 * The lessons runner on the real MobileNet-V2 (CI's cheap subset of `npm run lessons`):
 * two lessons whose effects are large (8→6→4-bit weights, signed vs unsigned 6-bit
 * activations) and the export lesson (the exported QDQ model against the simulation)
 * checked on the first 100 evaluation images of the usual split, sharing one FP32
 * evaluation and calibration. The full claims (872 images) are checked by
 * `npm run lessons`. Skips when ../shared/data is absent.
 */
import { describe, expect, it } from 'vitest';
import { DiskCropStore, loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { createNodeEngine, createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { findLesson } from '../../src/lessons/index.ts';
import { lessonsTable, runLessonClaims } from '../../src/lessons/run-claims.ts';
import { CLASS_INDEX, HAVE_SHARED_DATA, readModel, SAMPLE_DIR } from '../support/shared-data.ts';

describe.skipIf(!HAVE_SHARED_DATA)('lesson claims on the real MobileNet-V2 (cheap subset)', () => {
  it('bit-width, activation-sign and deploy hold on 100 evaluation images', async () => {
    const lessons = ['bit-width', 'activation-sign', 'deploy'].map((id) => findLesson(id)!);
    const runs: string[] = [];
    const out = await runLessonClaims(
      lessons,
      {
        // onnxruntime-node when installed (several times faster), else wasm
        engine: await createNodeEngine('node', 2).catch(() => createNodeWasmEngine(2)),
        modelBytes: readModel(),
        model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
        dataset: await loadImageFolder(SAMPLE_DIR, CLASS_INDEX),
        cropStore: new DiskCropStore(),
      },
      { evalLimit: 100, log: (l) => runs.push(l) },
    );
    console.log(`${runs.join('\n')}\n${lessonsTable(out)}`);
    // 3 weight widths + 2 activation signs + 1 exported run, one prepared group
    expect(runs).toHaveLength(6);
    expect(runs.filter((r) => r.includes('+export'))).toHaveLength(1);
    expect(out.map((o) => o.id)).toEqual(['bit-width', 'activation-sign', 'deploy']);
    for (const o of out) expect(o.holds, `${o.id}: ${o.details.join('; ')}`).toBe(true);
    expect(out[0].measured['w4.top1']).toBeLessThan(25);
  });
});
