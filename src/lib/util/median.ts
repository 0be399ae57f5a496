/**
 * The median of a list of numbers (the mean of the two middle ones for an even count; NaN
 * for none): the one summary of timings and changes that a few outliers under machine load
 * do not move. Pure.
 */
export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
