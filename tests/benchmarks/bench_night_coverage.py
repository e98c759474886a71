"""Benchmark: does the night's stated k error cover the truth (issue 13)?

Over simulated nights (:func:`glue_zeropoint.simulate.extinction.simulate_photometry_night`,
the same draw as ``tests/night/test_injection.py``: k per band 0.1-0.4, colour terms, a cloud
of 0.1-0.5 mag over a run of frames, airmass 1.0-2.5, flicker), the ensemble offsets and
the extinction fit recover k per band; printed: the fraction of fits whose truth lies inside
``k_ci95``, the pulls ``(k - truth) / k_err`` (mean, std), and the same split by which error
was stated (analytic or jackknife) and by the cloud naming (a cloud missed, a clear frame
named cloudy). Run:

    python tests/benchmarks/bench_night_coverage.py --seeds 1000

Measured (2026-12, 1000 seeds = 2000 fits): coverage 0.9625 (binomial SE 0.004), pull mean
-0.02, std 0.99; analytic error stated in 878 fits: coverage 0.943, pull std 1.11 (Student t
with ~13 dof expects ~1.08); jackknife in 1122: 0.978, 0.89. Seeds 0-299 alone gave 0.948
(600 fits, SE 0.009): the issue's 94.8% was that seed range, not a small error. The misses
that are not noise: 3 fits with a cloudy frame kept (k off) and 13 with a clear frame named
cloudy (coverage 0.62 there).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "night"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=300)
    p.add_argument("--start", type=int, default=0)
    args = p.parse_args(argv)
    from test_injection import _recover

    t0 = time.time()
    rows = []
    for seed in range(args.start, args.start + args.seeds):
        for bt, f, c, *_ in _recover(seed):
            jack = any("jackknife" in x for x in f.notes)
            rows.append((f.k - bt.k, f.k_err, f.k_ci95, jack, int(f.cloudy.sum()),
                         int(c.sum())))
    a = np.array(rows, float)
    d, e, ci, jk = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    pull = d / e
    inside = np.abs(d) <= ci
    n = len(a)
    print(f"seeds {args.start}-{args.start + args.seeds - 1}: {n} fits in {time.time() - t0:.0f} s")
    print(f"coverage (|k - truth| <= k_ci95) {inside.mean():.4f} (binomial SE "
          f"{np.sqrt(0.95 * 0.05 / n):.4f}); pull mean {pull.mean():+.3f}, std {pull.std():.3f}")
    for name, m in [("analytic error", jk == 0), ("jackknife error", jk == 1),
                    ("cloud missed", a[:, 4] < a[:, 5]), ("clear named cloudy", a[:, 4] > a[:, 5])]:
        if m.sum():
            print(f"  {name:20s} {int(m.sum()):5d} fits: coverage {inside[m].mean():.3f}, "
                  f"pull std {pull[m].std():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
