/** Top-1/top-5 accuracy with confidence intervals: part of every result and analysis. */
export interface Accuracy {
  top1: number; // fraction in [0,1]
  top5: number;
  /** 95% Wilson interval of top-1 */
  top1Ci: [number, number];
  top5Ci: [number, number];
}
