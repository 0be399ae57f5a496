/**
 * What the pipeline needs to know about a model beyond its bytes. Lives with the models
 * (the registry builds it) so lower layers never reach up to experiment/.
 */
import type { PreprocessSpec } from '../data/types.ts';

/** What the pipeline needs to know about a model beyond its bytes. */
export interface ModelSpec {
  /** registry id ('mobilenet-v2', 'resnet18', 'efficientnet-lite0') or 'sha256:<hex>' */
  id: string;
  label: string;
  /** preprocessing the weights were trained with */
  preprocess: PreprocessSpec;
  /** number of classes the classifier outputs (1000 for ImageNet) */
  classes: number;
  /**
   * Square input size in pixels to use when the graph leaves height/width symbolic (the
   * user's answer to MODEL_INPUT_SIZE_UNKNOWN). Ignored when the graph fixes its size.
   */
  inputSize?: number;
}
