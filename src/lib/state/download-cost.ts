/**
 * What a config downloads on a first visit when it runs on registry files: the model's
 * public file and the images of its calibration and evaluation split (from the image set's
 * embedded manifest). Shown before "Try it" and each lesson start. Pure apart from loading
 * the manifest module.
 */
import type { ExperimentConfig } from '../config/types.ts';
import { bytesOf, filesForSplit, getImageSet } from '../data/image-sets.ts';
import { MODEL_REGISTRY } from '../models/registry.ts';

export interface DownloadCost {
  modelBytes: number;
  imageBytes: number;
  images: number;
}

/** Undefined when the config's model or images are not registry files (a user's own). */
export async function downloadCost(cfg: ExperimentConfig): Promise<DownloadCost | undefined> {
  const model = MODEL_REGISTRY.find((e) => e.id === cfg.model);
  if (!model) return undefined;
  let set;
  try {
    set = getImageSet(cfg.dataset);
  } catch {
    return undefined;
  }
  const files = filesForSplit(await set.load(), cfg.calib, cfg.eval, cfg.seed);
  return { modelBytes: model.downloads[0].bytes, imageBytes: bytesOf(files), images: cfg.eval };
}
