/**
 * What the app learns of an imported quantized model (src/lib/imported reads it) and of its
 * comparison with the float parent: serializable shapes, as the CLI's JSON records carry them
 * and as they will cross the worker boundary. Pure types.
 */
import type { ErrorMetrics, LayerAnalysis, ModelAnalysis } from './analysis.ts';
import type { Accuracy } from './accuracy.ts';
import type { ExperimentConfig } from '../config/types.ts';

/** ONNX integer storage types an imported quantizer may use. */
export type IntType = 'int4' | 'uint4' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32';

/** How the file is quantized ('float': nothing quantized). */
export type ImportedFormat = 'qdq' | 'qoperator' | 'float';

/** A quantizer in words and numbers (what the table and the app show). */
export interface QuantDescription {
  storage: IntType;
  bits: number;
  signed: boolean;
  /** every zero point 0 (or the midpoint of an unsigned range) */
  symmetric: boolean;
  /** integer range narrower than the storage type's (e.g. [-127, 127] in int8) */
  narrow: boolean;
  qmin: number;
  qmax: number;
  granularity: 'per-tensor' | 'per-channel';
  axis: number | null;
  channels: number;
  scale: { min: number; max: number };
  zeroPoint: { min: number; max: number };
  /** the real range the quantizer represents, [(qmin − zp)·s, (qmax − zp)·s] (per channel: their union) */
  range: { min: number; max: number };
}

export interface ActivationInfo extends QuantDescription {
  /** skeleton tensor it quantizes */
  tensor: string;
  /** the node of the file that quantizes it (QuantizeLinear, or the QLinear op whose output it is) */
  origin: string;
}

/** One weighted layer of the imported model. */
export interface ImportedLayerInfo {
  /** node name in the skeleton (the file's node name: QLinearConv's, or the Conv's in QDQ) */
  node: string;
  /** op as written in the file, e.g. QLinearConv, QGemm, Conv */
  opType: string;
  /** "block 3 · depthwise 3×3", from the skeleton's structure (onnx/layer-names.ts) */
  label: string;
  weight: (QuantDescription & { tensor: string; dims: number[]; storedAs: 'integer' | 'float' }) | null;
  /** quantizer of the layer's data input */
  input: ActivationInfo | null;
  /** first quantizer after the layer (through activations and bias adds) */
  output: ActivationInfo | null;
  /** how the bias is stored: int32 at scale s_x·s_w (onnxruntime), float, or none */
  bias: 'int32' | 'float' | 'none';
}

/** What loading a quantized file tells the app (LoadedModel.quantized). */
export interface QuantizedInfo {
  format: Exclude<ImportedFormat, 'float'>;
  layers: ImportedLayerInfo[];
  /** activation quantizers in the file */
  activations: number;
  /** weighted layers left in float */
  floatLayers: string[];
  /** what the reader did not understand (the file then evaluates as it is only), as sentences */
  unsupported: string[];
  notes: string[];
}

export interface TensorComparison {
  /** skeleton tensor of the imported model and the parent tensor it was matched to */
  imported: string;
  parent: string;
  /** the file's values against the parent's float values (accumulated error) */
  accumulated: ErrorMetrics;
}

export interface LayerComparison {
  parent: string;
  imported: string;
  label: string;
  codeAgreement: number;
  /** accumulated error of the file at the first quantizer after the layer, when matched */
  fileAccumulated: ErrorMetrics | null;
  /** the re-simulated scheme's row (standalone and accumulated error, weight SQNR …) */
  simulated: LayerAnalysis | null;
}

export interface ParentComparison {
  images: number;
  /** top-1 agreement of the tapped imported session with the untapped one */
  tapAgreement: number;
  tensors: TensorComparison[];
  layers: LayerComparison[];
  analysis: ModelAnalysis;
}

/** The quantized file evaluated as it is on the current images (QuantApi.evaluateImported). */
export interface AsIsResult {
  /** sha256 of the quantized file */
  sha256: string;
  accuracy: Accuracy;
  images: { calib: number; eval: number; skipped: number };
  seconds: number;
}

/** The quantized file against its float parent (QuantApi.compareWithParent). */
export interface ImportedComparison {
  /** sha256 of the quantized file */
  sha256: string;
  parent: { sha256: string; id: string };
  /** weighted layers paired by topology */
  matched: number;
  /** weighted layers of the file without a parent layer, and of the parent without a file layer */
  unmatchedImported: string[];
  unmatchedParent: string[];
  /** activation quantizers of the file with no parent tensor */
  unmatchedActivations: string[];
  /** the file as it is on the same evaluation images */
  asIs: AsIsResult;
  /** the parent's FP32 accuracy on the same evaluation images */
  fp32: Accuracy;
  /** top-1 agreement of the file with its parent */
  agreement: number;
  /** the imported scheme re-simulated on the parent (a pipeline run of `fields`) */
  resimulated: Accuracy;
  /** top-1 agreement of the re-simulation with the file */
  resimulatedAgreement: number;
  /** the config fields that re-simulate the imported scheme (importedScheme, observers 'imported', bits …) */
  fields: Partial<ExperimentConfig>;
  comparison: ParentComparison;
}
