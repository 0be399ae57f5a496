/**
 * The step from a resolved ExperimentConfig to QuantSpecs: what the config's weight and
 * activation fields mean for one tensor's quantizer. MQBench maps symmetric schemes to
 * qint8 [-128, 127] and asymmetric ones to quint8 [0, 255]; the specs follow it.
 *
 * Must not: import ORT, DOM, Svelte, idb or node: modules.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { QuantSpec } from './types.ts';

type WeightFields = Pick<ExperimentConfig, 'wBits' | 'wGranularity' | 'wSymmetric' | 'wNarrowRange' | 'wPowerOfTwo'>;
type ActivationFields = Pick<ExperimentConfig, 'aBits' | 'aSymmetric' | 'aNarrowRange' | 'aPowerOfTwo' | 'aSign'>;

/**
 * QuantSpec of a weight tensor under a resolved config. `axis` is the output-channel
 * axis of that weight (0 for Conv and Gemm with transB, 1 for MatMul [in, out]); it is
 * kept as spec.axis only for per-channel. `bitsOverride` replaces wBits (first/last
 * layer at 8 bits). Symmetric weights are signed; asymmetric ones unsigned (MQBench quint8).
 * Never throws; bits are checked when the spec is used (qRange).
 */
export function weightSpec(cfg: WeightFields, axis: number, bitsOverride?: number): QuantSpec {
  const perChannel = cfg.wGranularity === 'per-channel';
  return {
    bits: bitsOverride ?? cfg.wBits,
    signed: cfg.wSymmetric,
    symmetric: cfg.wSymmetric,
    narrowRange: cfg.wNarrowRange,
    granularity: cfg.wGranularity,
    axis: perChannel ? axis : -1,
    powerOfTwo: cfg.wPowerOfTwo,
  };
}

/**
 * QuantSpec of an activation (always per-tensor) under a resolved config.
 * aSign 'signed' / 'unsigned' as given; 'auto' is unsigned iff `nonNegative` (the
 * calibrated range has min >= 0, e.g. after ReLU: OpenVINO). `bitsOverride` replaces aBits.
 * Never throws; bits are checked when the spec is used (qRange).
 */
export function activationSpec(cfg: ActivationFields, nonNegative: boolean, bitsOverride?: number): QuantSpec {
  const signed = cfg.aSign === 'signed' || (cfg.aSign === 'auto' && !nonNegative);
  return {
    bits: bitsOverride ?? cfg.aBits,
    signed,
    symmetric: cfg.aSymmetric,
    narrowRange: cfg.aNarrowRange,
    granularity: 'per-tensor',
    axis: -1,
    powerOfTwo: cfg.aPowerOfTwo,
  };
}
