/**
 * The named models the app and CLI offer: where their real weights live, what the files
 * look like (size, sha256, input/output names, batch), how images must be preprocessed,
 * and which variants of a classifier graph the pipeline accepts. Facts come from
 * /work/shared/data/model-sources.md (onnx/models Git LFS pointers and ONNX_HUB_MANIFEST,
 * commit b1eeaa1); none of the URLs could be fetched while writing this, so a downloader
 * must check size and sha256 and say so when they differ (MODEL_SHA_MISMATCH).
 *
 * Pure data plus tiny lookups. Must not fetch, parse ONNX, or import the engine.
 */
import type { PreprocessSpec } from '../data/types.ts';
import type { ModelSpec } from './types.ts';
import { QpError } from '../util/errors.ts';
import { EFFICIENTNET_LITE_TIMM_SPEC, TORCHVISION_SPEC } from '../data/preprocess.ts';

export type ModelId = 'resnet18' | 'mobilenet-v2' | 'efficientnet-lite0';

/** One downloadable ONNX file of a model. */
export interface ModelDownload {
  url: string;
  /** expected file size in bytes */
  bytes: number;
  /** expected sha256, 64 lowercase hex digits */
  sha256: string;
  inputName: string;
  /** null where the source does not document it */
  outputName: string | null;
  /** 'dynamic' when the batch dimension is symbolic; 1 when fixed (needs batch-1 evaluation) */
  batch: number | 'dynamic';
  opset: number;
  /** BatchNormalization already folded into Conv (false: explicit BN nodes) */
  bnFolded: boolean;
  /** documented ImageNet top-1 (%) of these weights, null when none is documented */
  documentedTop1: number | null;
  description: string;
}

/** Variants of a CNN classifier graph that the pipeline handles (for any model, named or user). */
export interface AcceptedVariants {
  /** BN folded into Conv, or explicit BatchNormalization nodes (folded before quantization) */
  bnFolded: boolean;
  bnUnfolded: boolean;
  layouts: ('NCHW' | 'NHWC')[];
  /** classifier as Gemm, or MatMul (+ Add) */
  classifiers: ('Gemm' | 'MatMul')[];
  /** a trailing Softmax (probabilities instead of logits) is accepted; top-k is unchanged */
  softmaxOutput: boolean;
  /** a fixed batch dimension of 1 is accepted and evaluated one image at a time */
  fixedBatch1: boolean;
}

export const ACCEPTED_VARIANTS: AcceptedVariants = {
  bnFolded: true,
  bnUnfolded: true,
  layouts: ['NCHW', 'NHWC'],
  classifiers: ['Gemm', 'MatMul'],
  softmaxOutput: true,
  fixedBatch1: true,
};

export interface ModelEntry {
  id: ModelId;
  label: string;
  /** the first is the default download; the rest are alternates with their own file facts */
  downloads: ModelDownload[];
  layout: 'NCHW' | 'NHWC';
  /** spatial input size (square) */
  inputSize: number;
  channels: 3;
  preprocess: PreprocessSpec;
  classes: number;
  /** which label map the class indices follow */
  labelMap: 'imagenet-1k';
  accepts: AcceptedVariants;
  /** trainable parameters as PyTorch counts them: conv weights, BN γ/β, classifier W and b */
  params: number;
  /** file name of the seeded synthetic stand-in written by `npm run make-models` */
  syntheticFile: string;
  license: string;
  /** sha256 of other files known to hold the same trained weights (e.g. re-assembled copies) */
  knownSha256: string[];
  notes: string;
}

const HF = 'https://huggingface.co/onnxmodelzoo';

export const MODEL_REGISTRY: ModelEntry[] = [
  {
    id: 'resnet18',
    label: 'ResNet-18',
    downloads: [
      {
        url: `${HF}/resnet18-v1-7/resolve/main/resnet18-v1-7.onnx`,
        bytes: 46_820_737,
        sha256: '4e8f8653e7a2222b3904cc3fe8e304cd8b339ce1d05fd24688162f86fb6df52c',
        inputName: 'data',
        outputName: 'resnetv15_dense0_fwd',
        batch: 'dynamic',
        opset: 7,
        bnFolded: false,
        documentedTop1: 69.93,
        description: 'ONNX Model Zoo resnet18-v1-7 (MXNet Gluon export), BatchNormalization nodes present, logits.',
      },
      {
        url: `${HF}/legacy_models/resolve/main/validated/vision/classification/resnet/model/resnet18-v2-7.onnx`,
        bytes: 46_806_737,
        sha256: '3b4d048057854022232aa20bf68262e31718ab7119a17f920b8a2dc1433f824b',
        inputName: 'data',
        outputName: 'resnetv22_dense0_fwd',
        batch: 'dynamic',
        opset: 7,
        bnFolded: false,
        documentedTop1: 69.7,
        description: 'ONNX Model Zoo resnet18-v2-7 (pre-activation ResNet, with a BN on the raw input), logits.',
      },
    ],
    layout: 'NCHW',
    inputSize: 224,
    channels: 3,
    preprocess: TORCHVISION_SPEC,
    classes: 1000,
    labelMap: 'imagenet-1k',
    accepts: ACCEPTED_VARIANTS,
    params: 11_689_512,
    syntheticFile: 'resnet18.onnx',
    knownSha256: [],
    license: 'Apache-2.0 (onnx/models); ImageNet terms apply to the trained weights.',
    notes: 'The v1-7 file is an MXNet Gluon ResNet-18 v1.5 with torchvision-style preprocessing.',
  },
  {
    id: 'mobilenet-v2',
    label: 'MobileNet-V2 1.0',
    downloads: [
      {
        url: `${HF}/mobilenetv2-12/resolve/main/mobilenetv2-12.onnx`,
        bytes: 13_964_571,
        sha256: 'c0c3f76d93fa3fd6580652a45618618a220fced18babf65774ed169de0432ad5',
        inputName: 'input',
        outputName: 'output',
        batch: 'dynamic',
        opset: 12,
        bnFolded: true,
        documentedTop1: 69.48,
        description: 'ONNX Model Zoo mobilenetv2-12 (PyTorch export), BN folded, ReLU6 as Clip, logits.',
      },
      {
        url: `${HF}/mobilenetv2-7/resolve/main/mobilenetv2-7.onnx`,
        bytes: 14_246_826,
        sha256: 'c1c513582d56afceff8516c73804e484c81c6a830712ab6d682253f4a3cd042f',
        inputName: 'data',
        outputName: 'mobilenetv20_output_flatten0_reshape0',
        batch: 1,
        opset: 7,
        bnFolded: false,
        documentedTop1: 70.94,
        description: 'ONNX Model Zoo mobilenetv2-7 (MXNet Gluon export), BN present, fixed batch 1, logits.',
      },
    ],
    layout: 'NCHW',
    inputSize: 224,
    channels: 3,
    preprocess: TORCHVISION_SPEC,
    classes: 1000,
    labelMap: 'imagenet-1k',
    accepts: ACCEPTED_VARIANTS,
    params: 3_504_872,
    syntheticFile: 'mobilenet-v2.onnx',
    // the test copy in shared/data: the same model-zoo weights re-assembled as one file
    knownSha256: ['f00130594d83447f5f46429a6c3b2f886036567cb61fe573fd171e7da07eab04'],
    license: 'Apache-2.0 (onnx/models); ImageNet terms apply to the trained weights.',
    notes:
      'The shared development copy models/mobilenetv2-7-fp32.onnx is the same PyTorch-export family (13,965,019 bytes, not byte-identical to mobilenetv2-12).',
  },
  {
    id: 'efficientnet-lite0',
    label: 'EfficientNet-Lite0',
    downloads: [
      {
        url: `${HF}/efficientnet_lite0_Opset17/resolve/main/efficientnet_lite0_Opset17.onnx`,
        bytes: 18_560_054,
        sha256: '0baee602f78ce8b9d6bfdf32394956c4fa42a814c8d1f31de628b6f489842311',
        inputName: 'x',
        outputName: null,
        batch: 1,
        opset: 17,
        bnFolded: true,
        documentedTop1: null,
        description: 'ONNX Model Zoo efficientnet_lite0_Opset17 (timm export), BN folded, fixed batch 1, logits.',
      },
    ],
    layout: 'NCHW',
    inputSize: 224,
    channels: 3,
    preprocess: EFFICIENTNET_LITE_TIMM_SPEC,
    classes: 1000,
    labelMap: 'imagenet-1k',
    accepts: ACCEPTED_VARIANTS,
    params: 4_652_008,
    syntheticFile: 'efficientnet-lite0.onnx',
    knownSha256: [],
    license: 'Apache-2.0 (timm weights, onnx/models); ImageNet terms apply to the trained weights.',
    notes:
      'UNVERIFIED: whether this export carries the pretrained timm efficientnet_lite0.ra_in1k weights (timm top-1 75.49) is not documented. ' +
      'After downloading, check the top-1 on a few labelled images and tell the user if it is near chance. ' +
      'Fixed batch 1: evaluate one image at a time. Preprocessing assumes timm (ImageNet mean/std, bicubic, crop 0.875); ' +
      'the TensorFlow Lite original instead uses (x − 127) / 128.',
  },
];

/** The registry entry for `id`. Throws QpError('ARG_INVALID') naming the known ids. */
/** Every sha256 under which a file of this model's trained weights is known. */
export function knownHashes(entry: ModelEntry): string[] {
  return [...entry.downloads.map((d) => d.sha256), ...entry.knownSha256];
}

/** The registry model whose weights a file with this sha256 holds, if any. */
export function findModelBySha256(sha256: string): ModelEntry | undefined {
  return MODEL_REGISTRY.find((e) => knownHashes(e).includes(sha256));
}

export function getModelEntry(id: string): ModelEntry {
  const entry = MODEL_REGISTRY.find((e) => e.id === id);
  if (!entry) {
    const known = MODEL_REGISTRY.map((e) => e.id).join(', ');
    throw new QpError(
      'ARG_INVALID',
      `There is no model named "${id}". Choose one of ${known}, or load your own ONNX file.`,
    );
  }
  return entry;
}

/** What the pipeline needs about a named model beyond its bytes. */
export function toModelSpec(entry: ModelEntry): ModelSpec {
  return { id: entry.id, label: entry.label, preprocess: entry.preprocess, classes: entry.classes };
}
