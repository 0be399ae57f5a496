// The named-model registry: every entry complete and consistent with model-sources.md facts.
import { describe, expect, it } from 'vitest';
import { ACCEPTED_VARIANTS, getModelEntry, MODEL_REGISTRY, toModelSpec } from '../../src/lib/models/registry.ts';
import { EFFICIENTNET_LITE_TIMM_SPEC, TORCHVISION_SPEC, validateSpec } from '../../src/lib/data/preprocess.ts';
import { QpError } from '../../src/lib/util/errors.ts';

describe('MODEL_REGISTRY', () => {
  it('holds the three named models with unique ids', () => {
    expect(MODEL_REGISTRY.map((e) => e.id)).toEqual(['resnet18', 'mobilenet-v2', 'efficientnet-lite0']);
  });

  for (const e of MODEL_REGISTRY) {
    it(`${e.id}: downloads, shapes and preprocessing are complete`, () => {
      expect(e.label.length).toBeGreaterThan(0);
      expect(e.downloads.length).toBeGreaterThan(0);
      for (const d of e.downloads) {
        expect(d.url).toMatch(/^https:\/\/huggingface\.co\/onnxmodelzoo\/.+\.onnx$/);
        expect(d.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(Number.isInteger(d.bytes) && d.bytes > 1_000_000).toBe(true);
        expect(d.inputName.length).toBeGreaterThan(0);
        expect(d.batch === 'dynamic' || d.batch === 1).toBe(true);
      }
      expect(new Set(e.downloads.map((d) => d.sha256)).size).toBe(e.downloads.length);
      expect(e.layout).toBe('NCHW');
      expect(e.inputSize).toBe(224);
      expect(e.classes).toBe(1000);
      expect(e.labelMap).toBe('imagenet-1k');
      expect(e.preprocess.crop).toBe(e.inputSize);
      expect(e.preprocess.layout).toBe(e.layout);
      expect(() => validateSpec(e.preprocess)).not.toThrow();
      expect(e.accepts).toEqual(ACCEPTED_VARIANTS);
      expect(e.syntheticFile).toBe(`${e.id}.onnx`);
    });
  }

  it('uses the documented default downloads and preprocessing', () => {
    expect(getModelEntry('resnet18').downloads[0].url).toContain('resnet18-v1-7.onnx');
    expect(getModelEntry('mobilenet-v2').downloads[0].url).toContain('mobilenetv2-12.onnx');
    expect(getModelEntry('mobilenet-v2').downloads[0].sha256).toBe(
      'c0c3f76d93fa3fd6580652a45618618a220fced18babf65774ed169de0432ad5',
    );
    const eff = getModelEntry('efficientnet-lite0');
    expect(eff.downloads[0].url).toContain('efficientnet_lite0_Opset17.onnx');
    expect(eff.downloads[0].batch).toBe(1);
    expect(eff.notes).toMatch(/UNVERIFIED/);
    expect(eff.preprocess).toEqual(EFFICIENTNET_LITE_TIMM_SPEC);
    expect(getModelEntry('resnet18').preprocess).toEqual(TORCHVISION_SPEC);
    expect(getModelEntry('mobilenet-v2').preprocess).toEqual(TORCHVISION_SPEC);
  });

  it('toModelSpec carries id, label, preprocessing and classes', () => {
    const e = getModelEntry('mobilenet-v2');
    expect(toModelSpec(e)).toEqual({ id: 'mobilenet-v2', label: e.label, preprocess: TORCHVISION_SPEC, classes: 1000 });
  });

  it('getModelEntry names the known ids for an unknown one', () => {
    expect(() => getModelEntry('vgg16')).toThrow(QpError);
    expect(() => getModelEntry('vgg16')).toThrow(/resnet18, mobilenet-v2, efficientnet-lite0/);
  });
});
