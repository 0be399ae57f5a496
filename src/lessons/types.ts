/**
 * The shape of a guided lesson: text a student reads, a share link that sets the app up,
 * and a claim about the real MobileNet-V2 that `npm run lessons` checks. Pure data types,
 * so lessons stay plain data files and the runner, the UI and the tests read one format.
 */
import type { ExperimentConfig } from '../lib/config/types.ts';
import type { BackendName } from '../lib/quant/types.ts';

/** Overrides on a backend preset (resolved with resolveConfig; calib 128 / eval 872 / seed 0 unless set). */
export type ConfigOverrides = Partial<Omit<ExperimentConfig, 'v' | 'model' | 'dataset' | 'placement'>> & {
  backend: BackendName;
  placement?: Partial<ExperimentConfig['placement']>;
};

/**
 * One experiment a claim needs; `analyze` adds the per-layer analysis (slower), `deploy`
 * exports the run as QDQ ONNX and evaluates the exported model on the same images,
 * `deployInteger` runs model.int8.onnx on onnxruntime's integer kernels (and the
 * deploy-exact simulation, and one layer's integer arithmetic by hand).
 */
export interface ClaimRun {
  config: ConfigOverrides;
  analyze?: boolean;
  deploy?: boolean;
  deployInteger?: boolean;
}

/**
 * Numbers a check can read from one run's result. Accuracies and drops are in percent /
 * percentage points; counts are counts.
 * - top1, top5: quantized accuracy; fp32: FP32 top-1; drop: fp32 − top1
 * - agreement: images where quantized and FP32 top-1 agree
 * - beforeFixes: top-1 before bias correction / BN re-estimation; fixGain: top1 − beforeFixes
 * - weightOnly, activationOnly: top-1 with only weights / only activations quantized (analyze)
 * - vanishedFirstDepthwise: weight channels rounded to all zero in the first depthwise conv (analyze)
 * - driftLateOverEarly: mean BN-statistic drift (|Δμ|/σ) of the last third of layers over that of
 *   the first third (analyze)
 * - deployedTop1: top-1 of the exported model.qdq.onnx run as written (onnxruntime's QDQ fusions
 *   off, see export/verify.ts); deployedAgreement: its top-1 agreement with the simulation, on
 *   the same images (deploy)
 * - integerTop1: top-1 of model.int8.onnx on onnxruntime's integer kernels; integerAgreement: its
 *   top-1 agreement with the simulation; exactAgreement: the deploy-exact simulation's top-1
 *   agreement with it (deployInteger)
 * - pixelMatch, fixedPointMatch: share (%) of one layer's outputs (block 1's depthwise conv, one
 *   image) where the hand computation of export/integer-arithmetic.ts with the float32 multiplier,
 *   or with the fixed-point multiplier M0·2^−n, gives the integer kernel's code (deployInteger)
 */
export const METRICS = [
  'top1',
  'top5',
  'fp32',
  'drop',
  'agreement',
  'beforeFixes',
  'fixGain',
  'weightOnly',
  'activationOnly',
  'vanishedFirstDepthwise',
  'driftLateOverEarly',
  'deployedTop1',
  'deployedAgreement',
  'integerTop1',
  'integerAgreement',
  'exactAgreement',
  'pixelMatch',
  'fixedPointMatch',
] as const;
export type Metric = (typeof METRICS)[number];

export interface Quantity {
  run: string;
  metric: Metric;
}

/** `left op right + margin`; right is a quantity or a constant. */
export interface Check {
  left: Quantity;
  op: '<' | '<=' | '>' | '>=';
  right: Quantity | number;
  /** added to the right side (e.g. "at least 40 points more": right = before, margin 40) */
  margin?: number;
}

export interface Claim {
  /** the claim as one human sentence */
  text: string;
  /** named experiments; runs with equal settings are computed once across all lessons */
  runs: Record<string, ClaimRun>;
  /** every check must hold for the claim to hold */
  checks: Check[];
}

export interface Lesson {
  /** kebab-case, unique; also the file name */
  id: string;
  title: string;
  /** the question the lesson answers */
  question: string;
  /** what to do in the app, in order */
  steps: string[];
  /** the number(s) to look at */
  notice: string;
  /** why it happens, at most 200 words */
  why: string;
  /** URL hash (without '#') in the codec of src/lib/config/url.ts, with `_hide` keys */
  link: string;
  /** which claim run the link shows */
  linkRun: string;
  claim: Claim;
}
