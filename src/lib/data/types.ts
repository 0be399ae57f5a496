/**
 * Data contracts: image sources, preprocessing specs, crop storage. Pure types.
 * Node (file system) and the browser (File objects, fetch, IndexedDB) implement them.
 */

/** How a model wants its input image. Decode → resize → crop → (x/255 - mean)/std. */
export interface PreprocessSpec {
  /** resize so the shorter side is this many pixels (torchvision Resize(256)) */
  resizeShorter: number;
  /** then center-crop to crop×crop (torchvision CenterCrop(224)) */
  crop: number;
  interpolation: 'bilinear' | 'bicubic';
  /** per-channel mean and std applied to x/255 (RGB order) */
  mean: [number, number, number];
  std: [number, number, number];
  layout: 'NCHW' | 'NHWC';
}

/** One labelled image: bytes are read lazily. */
export interface ImageSource {
  /** stable id, e.g. the WordNet id 'n01440764' or a file name */
  id: string;
  /** class index 0..classes-1 */
  label: number;
  read(): Promise<Uint8Array>;
}

export interface Dataset {
  name: string;
  classes: number;
  /** class index → [wnid, human name] */
  classNames: [string, string][];
  items: ImageSource[];
  /**
   * Distinguishes this data set's images in a shared crop cache (ids are only unique
   * within one data set), e.g. a hash of the folder path or base URL.
   */
  cacheNamespace?: string;
}

/**
 * A store of preprocessed crops (uint8 HWC RGB, crop×crop×3), keyed by image id and
 * preprocessing spec. Node: files on disk; browser: IndexedDB.
 */
export interface CropStore {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, crop: Uint8Array): Promise<void>;
}
