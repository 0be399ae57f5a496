/**
 * The config schema: one typed entry per ExperimentConfig field — its kind and domain,
 * default, URL key, CLI flag, UI label and group, and a paragraph of help a student can
 * read. Validation (config/resolve.ts), the URL codec (config/url.ts), the bench CLI
 * (cli/args.ts) and the ConfigPanel controls are all derived from this table, so adding
 * a field is one entry here plus its use in the pipeline.
 *
 * Hash stability. configHash is taken over a canonical form of the config. Fields of
 * schema revision 1 (the first release) are always part of it. A field added later must
 * declare `since` > 1 and a `neutral` value — the value that reproduces the behaviour of
 * configs made before it existed (e.g. `cle: false`). The canonical form leaves such a
 * field out while it equals its neutral value, so stored results and shared links of
 * older configs keep their hash; only configs that really use the new field hash
 * differently. (Its URL key is omitted at its default as well, so old links stay valid.)
 *
 * The ExperimentConfig type itself is derived from this table (each field's kind gives its
 * value type), so a field is declared once.
 *
 * A leaf module: pure data and tiny accessors; imports only other config modules.
 */
import { formatLayerBits, parseLayerBits } from './layer-bits.ts';
import {
  ACTIVATION_SIGNS,
  BACKEND_NAMES,
  BIT_RANGE,
  CLE_RELU6_MODES,
  DEFAULT_PTQ_ITERS,
  GRANULARITIES,
  OBSERVER_CHOICES,
  NO_IMPORTED_SCHEME,
  PREPROCESS_CHOICES,
  PTQ_ACT_RANGES,
  PTQ_INPUTS,
  PTQ_METHODS,
} from './names.ts';

/** The version every config carries (`v`); links and stored results of another version are refused. */
export const CONFIG_VERSION = 1 as const;

/** Which tensors get an activation fake-quantizer, per MQBench backend placement rules. */
export interface PlacementRules {
  /** inputs of Conv (incl. depthwise/grouped) — always true in every preset */
  conv: boolean;
  /** inputs of Gemm / MatMul (the classifier) */
  gemm: boolean;
  /** both inputs of elementwise Add (residual joins) */
  add: boolean;
  /** inputs of MaxPool / AveragePool / GlobalAveragePool */
  pool: boolean;
  /** inputs of Concat */
  concat: boolean;
  /** the model input itself, even where no quantized op reads it directly */
  modelInput: boolean;
}

export type FieldKind =
  | { kind: 'bool' }
  | { kind: 'int'; min: number; max: number }
  /** `labels` gives the UI text of values that need more than their name */
  | { kind: 'enum'; values: readonly string[]; labels?: Readonly<Record<string, string>> }
  /** `pattern`: the values allowed, with `patternText` saying so in a sentence */
  | { kind: 'string'; maxLength: number; pattern?: RegExp; patternText?: string }
  /** per-layer bit widths: ONNX node name → bits (text form `Conv_94=8,Conv_2=6`) */
  | { kind: 'bitsMap'; min: number; max: number };

/** The value type of a field kind: what ExperimentConfig holds for it. */
export type ValueOfKind<T extends FieldKind> = T extends { kind: 'bool' }
  ? boolean
  : T extends { kind: 'int' }
    ? number
    : T extends { kind: 'enum'; values: readonly (infer V)[] }
      ? V
      : T extends { kind: 'string' }
        ? string
        : T extends { kind: 'bitsMap' }
          ? Record<string, number>
          : never;

/** Where a control sits in the ConfigPanel; 'source' fields are set by the model and data panels. */
export type FieldGroup = 'backend' | 'source' | 'weights' | 'activations' | 'placement' | 'model' | 'images';

export const FIELD_GROUPS: readonly { id: FieldGroup; label: string }[] = [
  { id: 'backend', label: 'Backend preset' },
  { id: 'source', label: 'Model and images' },
  { id: 'weights', label: 'Weights' },
  { id: 'activations', label: 'Activations' },
  { id: 'placement', label: 'Where activations are quantized' },
  { id: 'model', label: 'Model and corrections' },
  { id: 'images', label: 'Images' },
];

/** Top-level key, or ['placement', rule] for the nested placement rules. */
export type FieldPath = readonly [string] | readonly ['placement', keyof PlacementRules];

/** What `usedWhen` reads: any config's values by field name (typed loosely, as the type derives from this table). */
export type ConfigValues = { readonly [field: string]: unknown };

export interface CliFlag {
  /** long option name without the dashes */
  flag: string;
  /** what the value looks like in --help */
  arg: string;
  /**
   * 'value': the flag sets this field (comma lists multiply into one config each);
   * 'input': the flag names a file or folder and the field gets that input's id.
   */
  role: 'value' | 'input';
  /** an input a command may go without (shown in brackets in --help) */
  optional?: boolean;
}

export interface ConfigField<N extends string = string, T extends FieldKind = FieldKind> {
  /** dotted name: the ExperimentConfig key, or `placement.<rule>` */
  name: N;
  path: FieldPath;
  type: T;
  /** 'preset': the backend preset sets it (config/presets.ts); otherwise the value itself */
  default: 'preset' | Readonly<ValueOfKind<T>>;
  /** key in the shareable link */
  url: string;
  cli: CliFlag;
  label: string;
  group: FieldGroup;
  /** a paragraph for students: what it means, what it does to accuracy, MQBench's term */
  help: string;
  /** schema revision that introduced the field (1 for everything of the first release) */
  since: number;
  /** for since > 1: the value that behaves like configs made before the field existed */
  neutral?: Readonly<ValueOfKind<T>>;
  /** the CLI value is one item, never split at commas (its text form contains commas) */
  cliSingle?: boolean;
  /**
   * for since > 1: false when another field makes this one irrelevant (ptqIters without
   * AdaRound); the hash then leaves it out whatever its value, like a neutral one
   */
  usedWhen?: (c: ConfigValues) => boolean;
}

const BOOL = { kind: 'bool' } as const;
const BITS = { kind: 'int', min: BIT_RANGE.min, max: BIT_RANGE.max } as const;
const OBSERVER = {
  kind: 'enum',
  values: OBSERVER_CHOICES,
  labels: { imported: "imported model's ranges" },
} as const;
const IMAGES = { kind: 'int', min: 1, max: 1_000_000 } as const;
const NAME = { kind: 'string', maxLength: 200 } as const;

const OBSERVER_HELP =
  'Observers (MQBench: observer) are run on the calibration images: min/max takes the extremes; ' +
  'ema- variants average per batch; mse searches the clipping range with the smallest squared error; ' +
  'percentile and ema-quantile clip rare outliers; clipstd widens min/max to at least mean ± 2.6 standard deviations (it never clips); ' +
  'kl minimizes the KL divergence of the histograms (TensorRT entropy calibration); ' +
  'imported takes the ranges and grids of an imported quantized model (see Imported scheme).';

type Entry<N extends string, T extends FieldKind> = Omit<ConfigField<N, T>, 'path' | 'url' | 'since'> & {
  path?: FieldPath;
  url?: string;
  since?: number;
};

/** A field with its literal name and kind kept, so ExperimentConfig can be derived from the table. */
function entry<const N extends string, const T extends FieldKind>(e: Entry<N, T>): ConfigField<N, T> {
  return { ...e, path: e.path ?? [e.name], url: e.url ?? e.name, since: e.since ?? 1 };
}

const PLACEMENT_HELP: Record<keyof PlacementRules, [string, string]> = {
  conv: [
    'Conv inputs',
    'Quantize the input of every convolution (including depthwise ones). Every backend does this: it is what makes the convolution itself run on integers.',
  ],
  gemm: [
    'Gemm / MatMul inputs',
    "Quantize the input of the fully connected classifier. Turning it off keeps the last layer's input in float, which usually recovers a little accuracy.",
  ],
  add: [
    'Add inputs',
    'Quantize both inputs of residual additions. Backends that add in integers need it; each extra quantizer adds rounding error where two branches join.',
  ],
  pool: [
    'Pooling inputs',
    'Quantize the inputs of max, average and global average pooling, as backends that pool in integers do.',
  ],
  concat: [
    'Concat inputs',
    'Quantize the inputs of concatenations, so all joined tensors share one scale (FBGEMM, Vitis, Tengine).',
  ],
  modelInput: [
    'Model input',
    'Quantize the image fed to the network itself, even where no quantized operation reads it directly (OpenVINO and Vitis do this).',
  ],
};

const PLACEMENT_FLAG: Record<keyof PlacementRules, string> = {
  conv: 'place-conv',
  gemm: 'place-gemm',
  add: 'place-add',
  pool: 'place-pool',
  concat: 'place-concat',
  modelInput: 'place-model-input',
};

/** Every ExperimentConfig field except the version `v`, in URL order (`backend` first). */
export const CONFIG_FIELDS = [
  entry({
    name: 'backend',
    type: { kind: 'enum', values: BACKEND_NAMES },
    default: 'tensorrt',
    cli: { flag: 'backend', arg: 'NAME[,NAME…]', role: 'value' },
    label: 'Backend preset',
    group: 'backend',
    help: "The hardware or runtime the model is meant to run on. Each backend fixes a quantization scheme (bits, symmetry, granularity, observers) and where fake-quantizers go, following MQBench's prepare_by_platform (BackendType). Changing it resets every preset field; editing a preset field afterwards marks it as a custom override.",
  }),
  entry({
    name: 'model',
    type: NAME,
    default: 'mobilenet-v2',
    cli: { flag: 'model', arg: 'FILE', role: 'input' },
    label: 'Model',
    group: 'source',
    help: 'The network being quantized: a model from the list, or "sha256:" and the fingerprint of an ONNX file you opened. Small, thin networks such as MobileNet lose more accuracy than wide ones because each channel carries more information.',
  }),
  entry({
    name: 'dataset',
    type: NAME,
    default: 'imagenet-sample',
    cli: { flag: 'data', arg: 'DIR', role: 'input' },
    label: 'Images',
    group: 'source',
    help: 'The labelled images used both to calibrate (choose ranges) and to evaluate accuracy. Calibration images should look like what the model will see in deployment; the evaluation images are kept apart from them.',
  }),
  entry({
    name: 'wBits',
    type: BITS,
    default: 'preset',
    cli: { flag: 'w-bits', arg: 'N[,N…]', role: 'value' },
    label: 'Bits',
    group: 'weights',
    help: 'How many bits each weight is stored with (MQBench: w_qscheme bit). 8 bits usually costs well under a point of accuracy; at 4 bits and below the rounding error grows quickly and per-channel scales or better observers matter much more.',
  }),
  entry({
    name: 'wGranularity',
    type: { kind: 'enum', values: GRANULARITIES, labels: { 'per-tensor': 'per tensor', 'per-channel': 'per channel' } },
    default: 'preset',
    cli: { flag: 'w-granularity', arg: 'per-tensor|per-channel', role: 'value' },
    label: 'Granularity',
    group: 'weights',
    help: 'Whether one scale covers a whole weight tensor or each output channel gets its own (MQBench: per_channel). Per-channel is much more accurate for networks whose channels have very different ranges, such as the depthwise convolutions of MobileNet.',
  }),
  entry({
    name: 'wSymmetric',
    type: BOOL,
    default: 'preset',
    cli: { flag: 'w-symmetric', arg: '1|0', role: 'value' },
    label: 'Symmetric',
    group: 'weights',
    help: 'Symmetric quantization puts zero exactly in the middle of the range (zero point 0, MQBench: symmetry). It is cheaper in hardware; asymmetric ranges fit lopsided weight distributions better and waste fewer integer levels.',
  }),
  entry({
    name: 'wNarrowRange',
    type: BOOL,
    default: 'preset',
    cli: { flag: 'w-narrow-range', arg: '1|0', role: 'value' },
    label: 'Narrow range',
    group: 'weights',
    help: 'Drop the most negative integer so the signed range is symmetric, e.g. [-127, 127] instead of [-128, 127], as TensorRT does. It costs one level out of 256 at 8 bits but matters more at low bit widths.',
  }),
  entry({
    name: 'wPowerOfTwo',
    type: BOOL,
    default: 'preset',
    cli: { flag: 'w-power-of-two', arg: '1|0', role: 'value' },
    label: 'Power-of-two scale',
    group: 'weights',
    help: 'Round each scale to a power of two so hardware can rescale with a bit shift (MQBench: pot_scale, used by Vitis AI). The coarser scale choice usually costs some accuracy.',
  }),
  entry({
    name: 'wObserver',
    type: OBSERVER,
    default: 'preset',
    cli: { flag: 'w-observer', arg: 'NAME[,NAME…]', role: 'value' },
    label: 'Observer',
    group: 'weights',
    help: `How the clipping range of each weight tensor is chosen. ${OBSERVER_HELP}`,
  }),
  entry({
    name: 'aBits',
    type: BITS,
    default: 'preset',
    cli: { flag: 'a-bits', arg: 'N[,N…]', role: 'value' },
    label: 'Bits',
    group: 'activations',
    help: 'How many bits the activations (the tensors flowing between layers) are quantized to (MQBench: a_qscheme bit). Activations are usually harder to quantize than weights because their range depends on the input; below 8 bits accuracy often drops sharply.',
  }),
  entry({
    name: 'aSymmetric',
    type: BOOL,
    default: 'preset',
    cli: { flag: 'a-symmetric', arg: '1|0', role: 'value' },
    label: 'Symmetric',
    group: 'activations',
    help: 'Symmetric activation ranges keep zero in the middle (zero point 0). After a ReLU all values are non-negative, so a signed symmetric range wastes half of its levels unless the sign is unsigned or auto.',
  }),
  entry({
    name: 'aNarrowRange',
    type: BOOL,
    default: 'preset',
    cli: { flag: 'a-narrow-range', arg: '1|0', role: 'value' },
    label: 'Narrow range',
    group: 'activations',
    help: 'Drop the most negative integer of signed activations, e.g. [-127, 127] (TensorRT). Ignored for unsigned ranges.',
  }),
  entry({
    name: 'aPowerOfTwo',
    type: BOOL,
    default: 'preset',
    cli: { flag: 'a-power-of-two', arg: '1|0', role: 'value' },
    label: 'Power-of-two scale',
    group: 'activations',
    help: 'Round activation scales to powers of two so rescaling is a bit shift (MQBench: pot_scale, Vitis AI). Cheaper hardware, usually a little less accuracy.',
  }),
  entry({
    name: 'aSign',
    type: { kind: 'enum', values: ACTIVATION_SIGNS, labels: { auto: 'auto (unsigned after ReLU)' } },
    default: 'preset',
    cli: { flag: 'a-sign', arg: 'signed|unsigned|auto', role: 'value' },
    label: 'Sign',
    group: 'activations',
    help: 'Whether activations use a signed or unsigned integer range. "auto" picks unsigned wherever the calibrated range has no negative values (after ReLU), as OpenVINO does; that doubles the resolution for those tensors.',
  }),
  entry({
    name: 'aObserver',
    type: OBSERVER,
    default: 'preset',
    cli: { flag: 'a-observer', arg: 'NAME[,NAME…]', role: 'value' },
    label: 'Observer',
    group: 'activations',
    help: `How the clipping range of each activation is chosen from the calibration images. Clipping rare outliers trades a large error on a few values for a finer grid on all the others. ${OBSERVER_HELP}`,
  }),
  ...(Object.keys(PLACEMENT_HELP) as (keyof PlacementRules)[]).map((k) =>
    entry({
      name: `placement.${k}`,
      path: ['placement', k],
      type: BOOL,
      default: 'preset',
      cli: { flag: PLACEMENT_FLAG[k], arg: '1|0', role: 'value' },
      label: PLACEMENT_HELP[k][0],
      group: 'placement',
      help: `${PLACEMENT_HELP[k][1]} (MQBench decides this per backend in its ModelQuantizer: which operator inputs get a fake-quantizer.)`,
    }),
  ),
  entry({
    name: 'firstLast8bit',
    type: BOOL,
    default: 'preset',
    cli: { flag: 'first-last-8bit', arg: '1|0', role: 'value' },
    label: 'First and last layer at 8 bits',
    group: 'model',
    help: 'Keep the first convolution and the classifier at 8 bits whatever the chosen bit widths, the usual academic setting for low-bit results (MQBench Academic backend). These two layers are the most sensitive, so this protects accuracy at 4 bits and below.',
  }),
  entry({
    name: 'foldBn',
    type: BOOL,
    default: true,
    cli: { flag: 'fold-bn', arg: '1|0', role: 'value' },
    label: 'Fold BatchNorm into Conv',
    group: 'model',
    help: 'Merge each BatchNormalization into the convolution before it, as deployment runtimes do, so the weights that get quantized are the ones that will really run (MQBench: BN folding / fuse). Turning it off quantizes the unfolded weights and is mostly useful to see why folding matters.',
  }),
  entry({
    name: 'calib',
    type: IMAGES,
    default: 128,
    cli: { flag: 'calib', arg: 'N', role: 'value' },
    label: 'Calibration images',
    group: 'images',
    help: 'How many images are run through the model to choose activation ranges (MQBench: calibration data). A few hundred are usually enough; too few can miss typical ranges, and they are never used for evaluation.',
  }),
  entry({
    name: 'eval',
    type: IMAGES,
    default: 1000 - 128,
    cli: { flag: 'eval', arg: 'N|rest', role: 'value' },
    label: 'Evaluation images',
    group: 'images',
    help: 'How many held-out images measure accuracy. More images give a steadier number: with 1,000 images one image is 0.1 percentage points. On the command line "rest" (the default) means every image not used for calibration.',
  }),
  entry({
    name: 'seed',
    type: { kind: 'int', min: 0, max: 0x7fffffff },
    default: 0,
    cli: { flag: 'seed', arg: 'N', role: 'value' },
    label: 'Seed',
    group: 'images',
    help: 'Chooses which images go to calibration and which to evaluation. The same seed always gives the same split; trying a few seeds shows how much of a difference between two settings is just chance.',
  }),
  entry({
    name: 'biasCorrection',
    type: BOOL,
    default: false,
    cli: { flag: 'bias-correction', arg: '1|0', role: 'value' },
    label: 'Bias correction',
    group: 'model',
    help: "After calibration, shift each layer's bias so the mean of its quantized output matches the float model on the calibration images (Nagel et al., data-free quantization; MQBench: bias correction). Cheap, and it often recovers accuracy lost to a systematic rounding shift.",
  }),
  entry({
    name: 'bnReestimate',
    type: BOOL,
    default: false,
    cli: { flag: 'bn-reestimate', arg: '1|0', role: 'value' },
    label: 'Re-estimate BN statistics',
    group: 'model',
    help: 'Recompute the BatchNorm mean and variance of the quantized model on the calibration images before folding, so later layers see correctly normalized inputs (MQBench/PyTorch: BN re-estimation). Helps most at low bit widths.',
  }),
  entry({
    name: 'cle',
    type: BOOL,
    default: false,
    cli: { flag: 'cle', arg: '1|0', role: 'value' },
    label: 'Cross-layer equalization',
    group: 'model',
    help: 'Before quantizing, rescale the output channels of each convolution and the matching input channels of the next one so both have similar ranges (Nagel et al. 2019, data-free quantization; MQBench: CLE), then absorb large biases into the next layer. The float model computes the same function (each ReLU6 becomes a ReLU followed by a per-channel clip), but per-tensor weight ranges become far less lopsided — it helps most with per-tensor weights, e.g. the SNPE preset on MobileNet-V2.',
    since: 2,
    neutral: false,
  }),
  entry({
    name: 'deployExact',
    type: BOOL,
    default: false,
    cli: { flag: 'deploy-exact', arg: '1|0', role: 'value' },
    label: 'Simulate the integer kernels (deploy-exact)',
    group: 'model',
    help: "Off: MQBench's simulation — fake quantization in float, with a float bias and a float sum before each rounding. On: simulate what onnxruntime's integer kernels compute when the model is deployed — the bias rounded to an int32 at scale s_x·s_w, the int32 sum requantized by the kernel's multiplier s_x·s_w/s_y and rounded once, ReLU6 absorbed into the output range, 8-bit values saturating at the type's limits. MQBench's point is that the two can disagree: compare the two numbers to see the deployment gap of a preset.",
    since: 2,
    neutral: false,
  }),
  entry({
    name: 'cleRelu6',
    type: {
      kind: 'enum',
      values: CLE_RELU6_MODES,
      labels: { clip: 'per-channel clip (exact)', relu: 'replace by ReLU', keep: 'keep the clip at 6' },
    },
    default: 'clip',
    cli: { flag: 'cle-relu6', arg: CLE_RELU6_MODES.join('|'), role: 'value' },
    label: 'ReLU6 under equalization',
    group: 'model',
    help: 'Equalization rescales a channel by s on one side of an activation and by 1/s on the other, which a ReLU allows but a ReLU6 does not (its bound of 6 would move). "per-channel clip" turns each ReLU6 into a ReLU followed by a clip at 6·s per channel, so the float model is unchanged; "replace by ReLU" drops the bound, exact only while activations stay below 6; "keep" leaves ReLU6 layers unequalized.',
    since: 2,
    neutral: 'clip',
    usedWhen: (c) => c.cle === true,
  }),
  entry({
    name: 'cleAbsorb',
    type: BOOL,
    default: true,
    cli: { flag: 'cle-absorb', arg: '1|0', role: 'value' },
    label: 'Absorb high biases',
    group: 'model',
    help: "After equalization some channels carry large biases, which widen the next activation's range. High-bias absorption moves the part of each bias the ReLU never clips (mean minus three standard deviations on the calibration images) into the next layer's bias (Nagel et al. 2019). Ignored when ReLU6 is kept.",
    since: 2,
    neutral: true,
    usedWhen: (c) => c.cle === true,
  }),
  entry({
    name: 'preprocess',
    type: {
      kind: 'enum',
      values: PREPROCESS_CHOICES,
      labels: {
        model: "the model's own",
        torchvision: 'torchvision',
        'efficientnet-lite': 'EfficientNet-Lite',
      },
    },
    default: 'model',
    cli: { flag: 'preprocess', arg: PREPROCESS_CHOICES.join('|'), role: 'value' },
    label: 'Preprocessing',
    group: 'model',
    help: "How each image is resized, cropped and normalised before it reaches the network. A model only works with the preprocessing it was trained with: the model's own is the registry's for a known model and torchvision's for any other ONNX file; choose another when you know your file was trained differently. torchvision: shorter side to 256 (bilinear), centre crop 224, ImageNet mean and standard deviation. EfficientNet-Lite: centre crop of 87.5 % (bicubic), (x − 127)/128.",
    since: 2,
    neutral: 'model',
  }),
  entry({
    name: 'inputSize',
    type: { kind: 'int', min: 0, max: 4096 },
    default: 0,
    cli: { flag: 'input-size', arg: 'N', role: 'value' },
    label: 'Input size (pixels)',
    group: 'model',
    help: 'The square image size fed to a model whose ONNX file leaves height and width open (symbolic); 0 takes the size the file declares. Most ImageNet models take 224.',
    since: 2,
    neutral: 0,
  }),
  entry({
    name: 'layerBits',
    type: { kind: 'bitsMap', min: BIT_RANGE.min, max: BIT_RANGE.max },
    default: {},
    cli: { flag: 'layer-bits', arg: 'NODE=BITS[,…]', role: 'value' },
    cliSingle: true,
    label: 'Per-layer bits',
    group: 'weights',
    help: 'Mixed precision: give some layers (by ONNX node name) their own weight bit width, e.g. "Conv_0=8,Conv_94=8" keeps two layers at 8 bits while the rest use the bits above. Keeping the few layers most sensitive to low bits at 8 bits recovers much of the accuracy for a small increase in model size (MQBench: mixed precision).',
    since: 2,
    neutral: {},
  }),
  entry({
    name: 'ptq',
    type: { kind: 'enum', values: PTQ_METHODS },
    default: 'none',
    cli: { flag: 'ptq', arg: PTQ_METHODS.join('|'), role: 'value' },
    label: 'Rounding',
    group: 'weights',
    help: "How weights are rounded to the grid. \"none\" rounds each weight to the nearest level. AdaRound (Nagel et al. 2020; MQBench: AdaRound) learns, layer by layer, whether each weight rounds up or down so that the layer's output on the calibration images changes least; GPTQ (Frantar et al. 2022) rounds one input column at a time and spreads the error onto the columns not yet rounded. BRECQ (Li et al. 2021) learns the rounding of a whole block (a residual block, or up to three layers in a row) at once against the block's output, with the activation step sizes; QDrop (Wei et al. 2022) does the same while leaving a random half of the activations unquantized at each step, so the rounding does not overfit to one pattern of activation errors — MQBench's best method at 4-bit activations. All of them matter most at 4 bits and below, where round-to-nearest loses much of the accuracy.",
    since: 2,
    neutral: 'none',
  }),
  entry({
    name: 'ptqIters',
    type: { kind: 'int', min: 1, max: 100_000 },
    default: DEFAULT_PTQ_ITERS,
    cli: { flag: 'ptq-iters', arg: 'N', role: 'value' },
    label: 'Rounding steps (AdaRound, BRECQ, QDrop)',
    group: 'weights',
    help: 'Optimisation steps per layer (AdaRound) or per block (BRECQ, QDrop); GPTQ has none. More steps settle more weights on the better side of the rounding, at the cost of time: a block step runs the block forward and backward on a few images. MQBench runs 20,000 steps per block on a GPU; a few hundred to a few thousand fit a browser (see the lesson on the low-bit frontier for what each costs).',
    since: 2,
    neutral: DEFAULT_PTQ_ITERS,
    usedWhen: (c) => c.ptq === 'adaround' || c.ptq === 'brecq' || c.ptq === 'qdrop',
  }),
  entry({
    name: 'ptqInputs',
    type: {
      kind: 'enum',
      values: PTQ_INPUTS,
      labels: { 'quantized-prefix': 'quantized model (MQBench)', fp32: 'FP32 model' },
    },
    default: 'quantized-prefix',
    cli: { flag: 'ptq-inputs', arg: PTQ_INPUTS.join('|'), role: 'value' },
    label: 'Rounding inputs (AdaRound, GPTQ)',
    group: 'weights',
    help: 'What each layer\'s rounding is fitted on. "quantized model": the layer sees its inputs as the quantized model computes them (every earlier layer already rounded, activations quantized) and aims at the FP32 output, so it also makes up for the error of the layers before it — MQBench\'s setting and the more accurate one (MobileNet-V2 W4A8: 81 % against 70 %). "FP32 model": the layer sees the FP32 inputs; one pass serves every experiment, but the layers\' errors add up, and re-estimating BatchNorm afterwards recovers most of it.',
    since: 2,
    // links and results made before the field existed reconstructed from FP32 inputs
    neutral: 'fp32',
    usedWhen: (c) => c.ptq !== 'none',
  }),
  entry({
    name: 'importedScheme',
    type: {
      kind: 'string',
      maxLength: 71,
      pattern: /^(none|sha256:[0-9a-f]{64})$/,
      patternText: '"none" or "sha256:" and the 64 hexadecimal digits of a quantized ONNX file',
    },
    default: NO_IMPORTED_SCHEME,
    // the command line names the quantized file by path; the config keeps its sha256
    cli: { flag: 'imported-scheme', arg: 'FILE', role: 'input', optional: true },
    label: 'Imported scheme',
    group: 'source',
    help: "Re-simulate the quantization of a quantized ONNX model made by another tool (onnxruntime's quantizer, a TensorRT-style QDQ export, this playground's export) on its float parent: every weight keeps the imported grid and every activation the imported range, while the observers are \"imported\". Change one thing — an observer, the granularity, one layer's bits — to see what that choice was worth. Named by the sha256 of the quantized file.",
    since: 2,
    neutral: NO_IMPORTED_SCHEME,
  }),
  entry({
    name: 'ptqActRanges',
    type: {
      kind: 'enum',
      values: PTQ_ACT_RANGES,
      labels: { auto: 'learned for BRECQ and QDrop', learned: 'learned (LSQ)', calibrated: 'calibrated' },
    },
    default: 'auto',
    cli: { flag: 'ptq-act-ranges', arg: PTQ_ACT_RANGES.join('|'), role: 'value' },
    label: 'Activation ranges (AdaRound, BRECQ, QDrop)',
    group: 'weights',
    help: 'Whether the reconstruction also learns each activation quantizer\'s step size, by the same gradient descent that learns the rounding (LSQ, Esser et al. 2020; MQBench: scale_lr), or keeps the range the observer chose. At 4-bit activations the observer\'s range is a guess made before any weight was rounded; learning it against the block\'s output is a large part of what BRECQ and QDrop gain. "learned for BRECQ and QDrop" keeps AdaRound on its fast calibrated-range solver; "learned" makes AdaRound learn them too (layer by layer, on the engine), "calibrated" turns learning off for every method.',
    since: 2,
    // reconstruction before the field existed kept the calibrated ranges (AdaRound: 'auto')
    neutral: 'auto',
    usedWhen: (c) => c.ptq === 'adaround' || c.ptq === 'brecq' || c.ptq === 'qdrop',
  }),
  entry({
    name: 'ptqDrop',
    type: { kind: 'int', min: 0, max: 100 },
    default: 50,
    cli: { flag: 'ptq-drop', arg: '0-100', role: 'value' },
    label: 'Dropped activation quantization, % (QDrop)',
    group: 'weights',
    help: "QDrop's probability, in percent, that an activation element is left unquantized at a reconstruction step (the float value passes instead; a fresh random choice for every element and step). Wei et al. 2022 and MQBench use 50. At 0 QDrop is BRECQ; at 100 the rounding is fitted without activation quantization at all.",
    since: 2,
    neutral: 50,
    usedWhen: (c) => c.ptq === 'qdrop',
  }),
] as const;

type TopLevelField = Exclude<(typeof CONFIG_FIELDS)[number], { name: `placement.${string}` }>;

/**
 * ExperimentConfig: the one versioned, serializable object that fully determines a run —
 * the CLI, the worker, stored results and the link all carry it. One key per field of
 * CONFIG_FIELDS (see each entry's help for its meaning), the placement rules nested.
 */
export type ExperimentConfig = {
  v: typeof CONFIG_VERSION;
  placement: PlacementRules;
} & { -readonly [F in TopLevelField as F['name']]: ValueOfKind<F['type']> };

/** The fields a backend preset sets (config/presets.ts). Everything else comes from defaults. */
export type PresetFields = Pick<
  ExperimentConfig,
  | 'wBits'
  | 'wGranularity'
  | 'wSymmetric'
  | 'wNarrowRange'
  | 'wPowerOfTwo'
  | 'wObserver'
  | 'aBits'
  | 'aSymmetric'
  | 'aNarrowRange'
  | 'aPowerOfTwo'
  | 'aSign'
  | 'aObserver'
  | 'placement'
  | 'firstLast8bit'
>;

const BY_NAME = new Map<string, ConfigField>(CONFIG_FIELDS.map((f) => [f.name, f]));

/** The schema entry of a field name (dotted for placement). */
export function configField(name: string): ConfigField | undefined {
  return BY_NAME.get(name);
}

/** A field's value in a config. */
export function getField(c: ExperimentConfig, f: ConfigField): unknown {
  return f.path.length === 2 ? c.placement[f.path[1]] : (c as ConfigValues)[f.path[0]];
}

/** A copy of `c` with one field set (placement copied, never shared). */
export function withField(c: ExperimentConfig, f: ConfigField, v: unknown): ExperimentConfig {
  if (f.path.length === 2) return { ...c, placement: { ...c.placement, [f.path[1]]: v } };
  return { ...c, [f.path[0]]: v };
}

/** Is this field set by the backend preset (so editing it is a custom override)? */
export function isPresetField(f: ConfigField): boolean {
  return f.default === 'preset';
}

/** The PresetFields key that holds a field ('placement' for each placement rule). */
export function presetKey(f: ConfigField): keyof PresetFields | undefined {
  return isPresetField(f) ? (f.path[0] as keyof PresetFields) : undefined;
}

/** The field's name in a sentence: "weight bits", "activation observer", "Seed". */
export function fieldTitle(f: ConfigField): string {
  if (f.group === 'weights') return `weight ${f.label.toLowerCase()}`;
  if (f.group === 'activations') return `activation ${f.label.toLowerCase()}`;
  if (f.group === 'placement') return `placement rule "${f.label}"`;
  return f.label.toLowerCase();
}

/** Does a value lie in a field's declared domain? */
export function inDomain(t: FieldKind, v: unknown): boolean {
  switch (t.kind) {
    case 'bool':
      return typeof v === 'boolean';
    case 'int':
      return typeof v === 'number' && Number.isInteger(v) && v >= t.min && v <= t.max;
    case 'enum':
      return typeof v === 'string' && t.values.includes(v);
    case 'string':
      return typeof v === 'string' && v.length > 0 && v.length <= t.maxLength && (!t.pattern || t.pattern.test(v));
    case 'bitsMap':
      return (
        !!v &&
        typeof v === 'object' &&
        !Array.isArray(v) &&
        Object.entries(v as Record<string, unknown>).every(
          ([k, b]) =>
            k.length > 0 &&
            k.length <= 200 &&
            !/[=,:\s]/.test(k) &&
            typeof b === 'number' &&
            Number.isInteger(b) &&
            b >= t.min &&
            b <= t.max,
        )
      );
  }
}

/** Field values compared by content (bitsMap values are objects). */
export function sameFieldValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!a || !b || typeof a !== 'object' || typeof b !== 'object') return false;
  return formatLayerBits(a as Record<string, number>) === formatLayerBits(b as Record<string, number>);
}

/** The text form of a value in links and on the command line. */
export function fieldText(t: FieldKind, v: unknown, bool: [string, string] = ['1', '0']): string {
  if (t.kind === 'bool') return v ? bool[0] : bool[1];
  if (t.kind === 'bitsMap') return formatLayerBits(v as Record<string, number>);
  return String(v);
}

/**
 * A value from its text form (links, the command line): 1/0 or true/false for booleans,
 * whole numbers, enum names, `NODE=BITS` lists. Undefined when the text is not a value of
 * the field's domain, so every front door refuses the same texts.
 */
export function parseFieldText(t: FieldKind, raw: string): unknown {
  let v: unknown = raw;
  if (t.kind === 'bool') v = raw === '1' || raw === 'true' ? true : raw === '0' || raw === 'false' ? false : undefined;
  else if (t.kind === 'int') v = /^-?\d{1,10}$/.test(raw) ? Number(raw) : undefined;
  else if (t.kind === 'bitsMap') v = parseBitsMapText(raw);
  return inDomain(t, v) ? v : undefined;
}

/** A bitsMap from its text form, or undefined when the text is not one. */
export function parseBitsMapText(raw: string): Record<string, number> | undefined {
  try {
    return parseLayerBits(raw);
  } catch {
    return undefined;
  }
}

/** The domain in words, for full-sentence messages ("a whole number from 2 to 16"). */
export function describeDomain(t: FieldKind, bool = 'true or false'): string {
  switch (t.kind) {
    case 'bool':
      return bool;
    case 'int':
      return `a whole number from ${t.min} to ${t.max}`;
    case 'enum':
      return `one of ${t.values.join(', ')}`;
    case 'string':
      return t.patternText ?? `a non-empty text of at most ${t.maxLength} characters`;
    case 'bitsMap':
      return `a list of NODE=BITS pairs with bits from ${t.min} to ${t.max} (e.g. Conv_0=8,Conv_94=8)`;
  }
}

/**
 * The object configHash is taken over: the config with every field introduced after
 * revision 1 left out while it equals its declared neutral value (see the header).
 */
export function hashedForm(
  c: ExperimentConfig,
  fields: readonly ConfigField[] = CONFIG_FIELDS,
): Record<string, unknown> {
  let out = { ...c, placement: { ...c.placement } } as Record<string, unknown> & { placement: Record<string, unknown> };
  for (const f of fields) {
    if (f.since <= 1 || f.neutral === undefined) continue;
    if (!sameFieldValue(getField(c, f), f.neutral) && (f.usedWhen?.(c) ?? true)) continue;
    if (f.path.length === 2) delete out.placement[f.path[1]];
    else {
      const { [f.path[0]]: _drop, ...rest } = out;
      void _drop;
      out = rest as typeof out;
    }
  }
  return out;
}
