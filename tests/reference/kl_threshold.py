"""
Reference for tests/unit/quant-observers-exact.test.ts: the entropy (KL) threshold search of
MXNet's `_get_optimal_threshold` (python/mxnet/contrib/quantization.py), on a histogram of
|x| instead of a signed one, written with numpy and scipy.stats.entropy as MXNet writes it.
The options the app adds are applied the same way as documented in src/lib/quant/observers.ts:
  - zero_bin='neighbour': bin 0 takes bin 1's count first (NVIDIA pytorch-quantization);
  - start_bin: the first candidate (never below `levels`);
  - stride: every stride-th candidate, plus the last;
  - ties: 'neighbour' keeps the last minimum (NVIDIA), 'keep' the first (MXNet, np.argmin);
  - smoothing: MXNet's eps = 1e-4, lowered where taking it would leave a bin <= 0 (folded
    histograms hold fractional counts; MXNet asserts instead).
Run: python3 tests/reference/kl_threshold.py  (prints the thresholds the test expects)
"""
import numpy as np
from scipy import stats


def smooth(p, eps=0.0001):
    is_zeros = p == 0
    n_zeros = int(is_zeros.sum())
    n_nonzeros = p.size - n_zeros
    if not n_nonzeros:
        return None
    if n_zeros == 0:
        return p.astype(np.float64)
    eps1 = eps * n_zeros / n_nonzeros
    min_nonzero = p[~is_zeros].min()
    if eps1 >= min_nonzero * 0.5:
        eps1 = min_nonzero * 0.5
        eps = eps1 * n_nonzeros / n_zeros
    return np.where(is_zeros, eps, p - eps1)


def kl_threshold(hist, abs_hi, levels, stride=1, zero_bin="keep", start_bin=None):
    hist = np.asarray(hist, dtype=np.float64)
    bins = hist.size
    if levels >= bins:
        return abs_hi
    h = hist.copy()
    if zero_bin == "neighbour":
        h[0] = h[1]
    if not h.sum() > 0:
        return abs_hi
    first = min(bins, max(levels, levels if start_bin is None else start_bin))
    candidates = list(range(first, bins, max(1, stride))) + [bins]
    divergence = []
    for i in candidates:
        sliced = h[:i]
        p = sliced.copy()
        p[-1] += h[i:].sum()
        is_nonzeros = p != 0
        merged = i // levels
        q = np.zeros(i)
        for j in range(levels):
            start = j * merged
            stop = i if j == levels - 1 else start + merged
            norm = is_nonzeros[start:stop].sum()
            if norm:
                q[start:stop] = sliced[start:stop].sum() / norm
        q[~is_nonzeros] = 0
        ps = smooth(p)
        if ps is None:
            divergence.append(None)
            continue
        qs = smooth(q)
        divergence.append(np.inf if qs is None else stats.entropy(ps, qs))
    best_kl, best_i = np.inf, bins
    for i, kl in zip(candidates, divergence):
        if kl is None:
            continue
        if (kl <= best_kl) if zero_bin == "neighbour" else (kl < best_kl):
            best_kl, best_i = kl, i
    return best_i * abs_hi / bins


CASES = {
    # a decaying |x| histogram with empty bins and a thin tail (24 bins over [0, 2.4])
    "tail": dict(hist=[50, 40, 33, 0, 25, 20, 16, 0, 12, 9, 7, 5, 4, 3, 0, 2, 2, 1, 0, 1, 0, 0, 1, 1], abs_hi=2.4, levels=4),
    # the same with NVIDIA's zero bin and first candidate, and with every third candidate
    "tail-neighbour": dict(hist=[500, 40, 33, 0, 25, 20, 16, 0, 12, 9, 7, 5, 4, 3, 0, 2, 2, 1, 0, 1, 0, 0, 1, 1], abs_hi=2.4, levels=4, zero_bin="neighbour", start_bin=8),
    "tail-stride3": dict(hist=[50, 40, 33, 0, 25, 20, 16, 0, 12, 9, 7, 5, 4, 3, 0, 2, 2, 1, 0, 1, 0, 0, 1, 1], abs_hi=2.4, levels=4, stride=3),
    # fractional counts (a folded histogram): smoothing must lower its eps
    "fractional": dict(hist=[3e-5, 2e-5, 0, 1.5e-5, 0, 1e-5, 0, 0, 5e-6, 0, 0, 0, 0, 0, 0, 2e-6], abs_hi=1.6, levels=2),
    # the zero spike of a ReLU kept (MXNet) and flattened (NVIDIA), and a first candidate late
    "spike-keep": dict(hist=[500, 40, 33, 0, 25, 20, 16, 0, 12, 9, 7, 5, 4, 3, 0, 2, 2, 1, 0, 1, 0, 0, 1, 1], abs_hi=2.4, levels=4),
    "spike-late-start": dict(hist=[500, 40, 33, 0, 25, 20, 16, 0, 12, 9, 7, 5, 4, 3, 0, 2, 2, 1, 0, 1, 0, 0, 1, 1], abs_hi=2.4, levels=4, zero_bin="neighbour", start_bin=20),
    # a flat histogram: nothing to cut, the full range wins
    "flat": dict(hist=[10] * 16, abs_hi=3.2, levels=4),
    # two bumps: the threshold must keep the second
    "bimodal": dict(hist=[30, 20, 10, 5, 2, 1, 0, 0, 0, 0, 4, 9, 4, 1, 0, 0], abs_hi=16.0, levels=4),
}

if __name__ == "__main__":
    for name, c in CASES.items():
        print(f"{name}: {kl_threshold(**c)!r}")
