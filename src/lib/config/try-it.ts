/**
 * "Try it": the first experiment a teacher shows, one click from the landing page on any
 * site — MobileNet-V2 on the registry's ImageNet sample under the default backend preset,
 * with a small evaluation split so the first result needs little download (the model and
 * 208 images; `npm run bench:transfer` prints the bytes), and the full evaluation split one
 * click away. Pure data.
 */
import type { ExperimentConfig } from './types.ts';

export const TRY_IT: Readonly<Partial<ExperimentConfig>> = Object.freeze({
  model: 'mobilenet-v2',
  dataset: 'imagenet-sample',
  backend: 'tensorrt',
  calib: 32,
  eval: 176,
  seed: 0,
});
