/**
 * All guided lessons, in teaching order. Each lesson is a data file in this folder;
 * add new ones here.
 */
import type { Lesson } from './types.ts';
import { lesson as w8a8 } from './w8a8-almost-free.ts';
import { lesson as bitWidth } from './bit-width.ts';
import { lesson as perChannel } from './per-channel.ts';
import { lesson as vanishing } from './vanishing-channels.ts';
import { lesson as sign } from './activation-sign.ts';
import { lesson as observers } from './observers.ts';
import { lesson as calibSize } from './calibration-size.ts';
import { lesson as collapse } from './low-bit-collapse.ts';
import { lesson as biasCorrection } from './bias-correction.ts';
import { lesson as firstLast } from './first-last-8bit.ts';
import { lesson as cle } from './cross-layer-equalization.ts';
import { lesson as mixedPrecision } from './mixed-precision.ts';
import { lesson as adaround } from './adaround.ts';
import { lesson as deploy } from './deploy.ts';
import { lesson as deploymentGap } from './deployment-gap.ts';
import { lesson as integerArithmetic } from './integer-arithmetic.ts';
import { lesson as lowBitFrontier } from './low-bit-frontier.ts';

export type { Lesson } from './types.ts';

export const LESSONS: readonly Lesson[] = [
  w8a8,
  bitWidth,
  perChannel,
  vanishing,
  sign,
  observers,
  calibSize,
  collapse,
  biasCorrection,
  firstLast,
  cle,
  mixedPrecision,
  adaround,
  deploy,
  deploymentGap,
  integerArithmetic,
  lowBitFrontier,
];

export function findLesson(id: string): Lesson | undefined {
  return LESSONS.find((l) => l.id === id);
}
