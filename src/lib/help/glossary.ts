/**
 * The glossary: one short definition per term the result and analysis views show, so a
 * student can look up "agreement" or "SQNR" where it appears. Pure data; the help
 * components (src/components/help) render it. Config-field help lives in the config schema.
 */

export interface GlossaryEntry {
  id: string;
  term: string;
  /** one or two sentences, plain language */
  text: string;
}

export const GLOSSARY: readonly GlossaryEntry[] = [
  {
    id: 'ptq',
    term: 'Post-training quantization (PTQ)',
    text: "Converting a trained network's float32 weights and activations to low-bit integers without retraining: only a few calibration images are run to choose the quantization ranges.",
  },
  {
    id: 'scale-zero-point',
    term: 'Scale and zero point',
    text: 'A uniform quantizer maps a real value x to the integer q = round(x / s) + zp, clipped to the integer range. The scale s is the step between levels; the zero point zp is the integer that represents 0.',
  },
  {
    id: 'clipping-range',
    term: 'Clipping range',
    text: 'The real interval a quantizer covers, [(qmin − zp)·s, (qmax − zp)·s]. Values outside are clipped to its ends (clipping error); values inside are rounded to the nearest level (rounding error).',
  },
  {
    id: 'w8a8',
    term: 'W8A8, W4A8 …',
    text: 'Bit widths: W is the number of bits of the weights, A of the activations. W4A8 means 4-bit weights and 8-bit activations.',
  },
  {
    id: 'top1',
    term: 'Top-1 / top-5 accuracy',
    text: "Share of evaluation images whose true class is the model's highest-scoring class (top-1), or among its five highest (top-5). Here measured on the sample images, not the full ImageNet validation set.",
  },
  {
    id: 'interval',
    term: '95% interval',
    text: 'Wilson score interval of an accuracy measured on a finite sample: with 872 images an accuracy near 80% is known to about ±2.7 points. Differences smaller than the intervals may be noise.',
  },
  {
    id: 'drop',
    term: 'Top-1 drop',
    text: 'FP32 top-1 minus quantized top-1, in percentage points, on the same evaluation images.',
  },
  {
    id: 'agreement',
    term: 'Agreement',
    text: 'Share of evaluation images where the quantized model predicts the same top-1 class as the FP32 model, right or wrong. It needs no labels and is less noisy than comparing two accuracies.',
  },
  {
    id: 'sqnr',
    term: 'SQNR',
    text: 'Signal-to-quantization-noise ratio, 10·log10(Σ reference² / Σ error²) in dB: how large the FP32 signal is compared with the error quantization adds. Each extra bit adds about 6 dB.',
  },
  {
    id: 'observer',
    term: 'Observer',
    text: "The rule that picks a tensor's clipping range from calibration data: MinMax takes the extremes, MSE searches for the range with the least squared error, percentile drops the rarest values, KL matches distributions; EMA variants average over batches.",
  },
  {
    id: 'calibration',
    term: 'Calibration',
    text: 'Running a few unlabeled images through the FP32 model to record activation statistics, from which observers choose the activation ranges.',
  },
  {
    id: 'per-channel',
    term: 'Per-tensor / per-channel',
    text: 'Per-tensor quantization uses one scale for a whole tensor; per-channel gives each output channel of a weight its own scale, which matters when channel ranges differ widely (depthwise convolutions).',
  },
  {
    id: 'symmetric',
    term: 'Symmetric / asymmetric',
    text: 'A symmetric grid is centred on zero (zero point 0); an asymmetric one shifts it with a zero point so a range like [−1, 5] uses every level.',
  },
  {
    id: 'narrow-range',
    term: 'Narrow range',
    text: 'A signed grid without its most negative level, e.g. [−127, 127] instead of [−128, 127], so it is exactly symmetric (TensorRT).',
  },
  {
    id: 'power-of-two',
    term: 'Power-of-two scale',
    text: 'Scales restricted to 2^k, so rescaling is a bit shift on hardware without multipliers (Vitis AI); coarser than a free scale.',
  },
  {
    id: 'activation-sign',
    term: 'Activation sign',
    text: 'Whether activations use a signed or an unsigned integer range. After ReLU values are never negative, so an unsigned grid uses all levels where a signed one wastes half.',
  },
  {
    id: 'placement',
    term: 'Placement',
    text: 'Which tensors get a quantizer: the inputs of convolutions and the classifier always; residual additions, pooling, concatenation and the model input depending on the backend.',
  },
  {
    id: 'bn-folding',
    term: 'BatchNorm folding',
    text: 'Merging a BatchNormalization layer into the convolution before it (scaling its weights and shifting its bias), as inference engines do, so the folded weights are what gets quantized.',
  },
  {
    id: 'weight-only',
    term: 'Weight-only / activation-only accuracy',
    text: 'Accuracy with only the weights quantized (activations in float) or only the activations quantized: it tells which of the two causes a drop.',
  },
  {
    id: 'vanished',
    term: 'Vanished channels',
    text: 'Output channels whose weights all round to zero because their range is below half a quantization step; their feature maps disappear.',
  },
  {
    id: 'drift',
    term: 'Drift',
    text: "How far the quantized model's per-channel output mean moves from the FP32 one, in units of the FP32 standard deviation (|Δμ|/σ). It accumulates with depth.",
  },
  {
    id: 'bias-correction',
    term: 'Bias correction / BN re-estimation',
    text: "Forward-only fixes: measure each channel's mean (and spread) error on calibration images and correct it in the bias (or re-estimate the BatchNorm statistics), layer by layer.",
  },
  {
    id: 'integer-kernels',
    term: 'Check on integer kernels',
    text: 'Runs these settings again on the wasm engine, writes the integer model (model.int8.onnx) and runs it the way a deployment does: onnxruntime fuses each quantize/dequantize group into an integer kernel (QLinearConv …, int32 bias, integer requantization). Both run on the same evaluation images.',
  },
  {
    id: 'deployed-agreement',
    term: 'Agreement with the simulation',
    text: 'Share of evaluation images whose deployed top-1 class is the simulated top-1 class. Two models with the same top-1 can still disagree on many images.',
  },
  {
    id: 'first-divergence',
    term: 'First diverging layer',
    text: "Comparing the simulation and the deployment layer by layer on a few images, in integer steps: the first layer whose codes differ by more than one step, and why (int32 bias rounding, requantization rounding, an operator left in float, a fusion the simulation does not model). 'none': no layer did on those images.",
  },
  {
    id: 'integer-arithmetic',
    term: 'Integer arithmetic of one output',
    text: 'What an 8-bit kernel computes: the int8 × uint8 products summed in an int32, plus an int32 bias, times M = s_x·s_w/s_y, rounded, plus the output zero point, saturated to a byte. TFLite writes M as an integer M0 and a shift instead of a float.',
  },
  {
    id: 'deploy-gap',
    term: 'Simulated versus deployed, per preset',
    text: "MQBench's finding: a simulation's accuracy need not be the deployed backend's. Each preset onnxruntime can run (TensorRT, FBGEMM, SNPE, Academic) at these bits is simulated and deployed on the same images; the gap is deployed minus simulated top-1.",
  },
  {
    id: 'accuracy-search',
    term: 'Smallest model within a top-1 budget',
    text: "From these settings, keep the fewest layers at higher precision (8 bits, or 16 for an 8-bit preset) so that top-1 drops by at most the budget, as NNCF's accuracy control does: rank the layers by the top-1 each gives back when kept alone, keep the shortest prefix of that ranking within budget, then re-quantize each kept layer the budget allows.",
  },
  {
    id: 'max-drop',
    term: 'Largest top-1 drop',
    text: "The budget of the search: FP32 top-1 minus the searched model's top-1, in points, on the evaluation images of these settings. With 64 images one image is 1.6 points, so a budget under that asks for no lost image at all.",
  },
  {
    id: 'rank-images',
    term: 'Ranking images',
    text: 'The first evaluation images, on which each layer is tried alone at higher precision (one evaluation per layer) to order the layers by cost. More images rank better and take longer; the budget itself is always checked on every evaluation image.',
  },
  {
    id: 'check-images',
    term: 'Budget-check images',
    text: 'The first evaluation images on which FP32 and each candidate model are compared against the budget. Every check runs all of them, so fewer images make the search faster and its top-1 coarser (one image of 200 is half a point). The searched settings keep this count as their evaluation images.',
  },
  {
    id: 'search-prune',
    term: 'Re-quantize kept layers',
    text: "After the search, try each kept layer at the preset's bits again, largest first, and leave it quantized when the budget still holds. It can only shrink the model, but costs one evaluation on every evaluation image per kept layer, the longest part of a search on a large model.",
  },
  {
    id: 'layer-gain',
    term: 'Gain kept alone',
    text: "Top-1 points won back on the ranking images when only this layer is kept at higher precision and every other stays at the preset's bits. The most costly layers come first; equal gains are ordered by agreement with FP32, then by the smaller layer.",
  },
  {
    id: 'pareto-front',
    term: 'Size versus top-1 (Pareto front)',
    text: 'Each layer is tried alone at each bit width chosen (its cost: the share of ranking images whose prediction changes); the cheapest mix for every weight size is found by adding costs, and a few mixes are evaluated for real. A point is on the front when no other is smaller and at least as accurate. Each point is a link to its settings.',
  },
  {
    id: 'imported-model',
    term: 'Imported quantized model',
    text: "An ONNX file already quantized by a tool (onnxruntime's quantizer, this playground's export): QDQ files keep QuantizeLinear/DequantizeLinear pairs around float ops, QOperator files use integer ops such as QLinearConv. Its scales and zero points are read, not simulated.",
  },
  {
    id: 'evaluate-as-is',
    term: 'Evaluate as it is',
    text: 'Runs the quantized file itself on the engine, on the evaluation images of the current settings: the top-1/top-5 the file really gets, with its own integer arithmetic.',
  },
  {
    id: 'float-parent',
    term: 'Float parent',
    text: "The FP32 model the quantized file was made from. Layers are paired by the graph's shape, not by names (exporters rename tensors); layers without a partner are listed. Agreement is the share of images where the file and its parent predict the same class.",
  },
  {
    id: 'resimulate',
    term: 'Re-simulate the imported scheme',
    text: 'Runs the float parent through the playground with the imported weight grids and activation ranges (observer "imported"). Then change one setting, such as the activation observer or one bit width, and run again to see what that choice was worth.',
  },
];

export function glossaryEntry(id: string): GlossaryEntry {
  const e = GLOSSARY.find((g) => g.id === id);
  if (!e) throw new Error(`The glossary has no entry "${id}".`);
  return e;
}
