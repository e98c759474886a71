"""Asterism matching: find the similarity transform from pixels to the tangent plane.

Triangles are built from each star and pairs of its nearest neighbours, among the brightest
detected stars on one side and among the brightest catalog stars (at a matched surface
density) on the other. A triangle's shape, ``(L0/L2, L1/L2)`` with sorted side lengths, does
not change under rotation, scaling and mirroring, so similar triangles are found with a k-d
tree. Each pair of similar triangles proposes a transform (scale, rotation, parity,
translation); proposals outside the allowed scale range or parity are dropped and the rest vote
in coarse bins of transform space. The best-supported proposals are then checked against all
bright stars, and a proposal is accepted only when the number of stars it lines up is far
beyond what chance gives: the false-alarm probability (Poisson tail of the number of chance
coincidences, times the number of proposals tried) must be tiny.
"""

import itertools
import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import poisson

from .._settings import Settings

__all__ = ["Similarity", "triangles", "propose", "false_alarm_log10", "PatternTuning"]

log = logging.getLogger(__name__)


@dataclass
class Similarity:
    """``w = a * z' + b`` with ``z' = x + iy`` (or its conjugate when ``parity = -1``).

    ``w = xi + i eta`` are tangent-plane coordinates (arcsec, xi towards east); the map has
    determinant sign ``parity`` (-1 for an ordinary unmirrored sky image, where east is to the
    left when north is up).
    """

    a: complex
    b: complex
    parity: int

    @property
    def scale(self):
        """Arcsec per pixel."""
        return abs(self.a)

    @property
    def rotation(self):
        """Rotation angle (degrees) of the complex factor."""
        return math.degrees(math.atan2(self.a.imag, self.a.real))

    def apply(self, x, y):
        z = np.asarray(x, float) + 1j * np.asarray(y, float) * self.parity
        w = self.a * z + self.b
        return w.real, w.imag

    def inverse(self, xi, eta):
        w = np.asarray(xi, float) + 1j * np.asarray(eta, float)
        z = (w - self.b) / self.a
        return z.real, z.imag * self.parity


def triangles(xy, k=6, min_side=0.0, tol=0.0):
    """Triangles of each point with pairs of its ``k`` nearest neighbours.

    Returns
    -------
    verts : ndarray (M, 3) int
        Vertex indices in canonical order: opposite the shortest, middle, longest side.
    inv : ndarray (M, 2)
        Invariants ``(L0/L2, L1/L2)``.
    longest : ndarray (M,)
        Longest side length.
    sign : ndarray (M,)
        Sign of the oriented area in canonical order.
    """
    xy = np.asarray(xy, float)
    n = len(xy)
    if n < 3:
        return (np.zeros((0, 3), int), np.zeros((0, 2)), np.zeros(0), np.zeros(0))
    k = min(k, n - 1)
    _, nb = cKDTree(xy).query(xy, k + 1)
    combos = np.array(list(itertools.combinations(range(1, k + 1), 2)))
    tri = np.column_stack([np.repeat(nb[:, 0], len(combos)),
                           nb[:, combos[:, 0]].ravel(), nb[:, combos[:, 1]].ravel()])
    tri = np.unique(np.sort(tri, axis=1), axis=0)
    p = xy[tri]  # (M, 3, 2)
    # side opposite vertex j
    opp = np.stack([np.hypot(*(p[:, 1] - p[:, 2]).T), np.hypot(*(p[:, 0] - p[:, 2]).T),
                    np.hypot(*(p[:, 0] - p[:, 1]).T)], axis=1)
    order = np.argsort(opp, axis=1)
    sides = np.take_along_axis(opp, order, axis=1)
    verts = np.take_along_axis(tri, order, axis=1)
    L0, L1, L2 = sides.T
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.column_stack([L0 / L2, L1 / L2])
    q = xy[verts]
    area = ((q[:, 1, 0] - q[:, 0, 0]) * (q[:, 2, 1] - q[:, 0, 1])
            - (q[:, 1, 1] - q[:, 0, 1]) * (q[:, 2, 0] - q[:, 0, 0]))
    good = (L0 > min_side) & np.all(np.isfinite(inv), axis=1)
    if tol:
        # vertex order is ambiguous when two sides are nearly equal
        good &= ((L1 - L0) / L2 > 2 * tol) & ((L2 - L1) / L2 > 2 * tol)
    return verts[good], inv[good], L2[good], np.sign(area[good])


@dataclass
class PatternTuning(Settings):
    """Tuning of the triangle search of :func:`propose` (serialisable).

    Attributes
    ----------
    k : int
        Neighbours per star whose triangles are formed.
    tol : float
        Tolerance of the triangle shape invariants.
    min_side_pix : float
        Shortest side of a source triangle (pixels).
    bin_pix, bin_deg, bin_log : float
        Vote bins: translation (pixels of the source), rotation (degrees), log scale.
    """

    k: int = 6
    tol: float = 0.012
    min_side_pix: float = 8.0
    bin_pix: float = 40.0
    bin_deg: float = 3.0
    bin_log: float = 0.03


def _triangle_pairs(src_xy, cat_xy, scale_bounds, parity, p):
    """Source and catalog triangles of the same shape that pass the scale and parity tests:
    ``(sv, sl, cv, i_s, i_c, par)``, or None when there are none."""
    sv, sinv, sl, ss = triangles(src_xy, p.k, min_side=p.min_side_pix, tol=p.tol)
    cv, cinv, cl, cs = triangles(cat_xy, p.k, tol=p.tol)
    if not len(sv) or not len(cv):
        return None
    tree = cKDTree(cinv)
    hits = tree.query_ball_point(sinv, p.tol)
    lens = np.fromiter((len(h) for h in hits), int, len(hits))
    if lens.sum() == 0:
        return None
    i_s = np.repeat(np.arange(len(sv)), lens)
    i_c = np.fromiter(itertools.chain.from_iterable(hits), int, lens.sum())
    par = (ss[i_s] * cs[i_c]).astype(int)
    scl = cl[i_c] / sl[i_s]
    keep = par != 0
    if scale_bounds is not None:
        keep &= (scl >= scale_bounds[0]) & (scl <= scale_bounds[1])
    if parity is not None:
        keep &= par == parity
    i_s, i_c, par = i_s[keep], i_c[keep], par[keep]
    if not i_s.size:
        return None
    return sv, sl, cv, i_s, i_c, par


def _similarities(src_xy, cat_xy, sv, cv, i_s, i_c, par):
    """``w = a z + b`` of each triangle pair (complex least squares on its three vertices)."""
    zs = src_xy[sv[i_s]]  # (P, 3, 2)
    z = zs[..., 0] + 1j * zs[..., 1] * par[:, None]
    wc = cat_xy[cv[i_c]]
    w = wc[..., 0] + 1j * wc[..., 1]
    zm = z.mean(axis=1, keepdims=True)
    wm = w.mean(axis=1, keepdims=True)
    a = ((w - wm) * np.conj(z - zm)).sum(axis=1) / (np.abs(z - zm) ** 2).sum(axis=1)
    return a, wm[:, 0] - a * zm[:, 0]


def _vote(src_xy, a, b, par, p):
    """Bins of (parity, log scale, angle, translation of the source centroid): each pair's bin
    (``inverse``) and each bin's support, its votes plus those of its neighbours in
    translation and angle (a true solution straddling a bin edge splits its votes)."""
    ctr = src_xy.mean(axis=0)
    sc = np.abs(a)
    zc = ctr[0] + 1j * ctr[1] * par
    t = a * zc + b
    tb = p.bin_pix * float(np.median(sc))
    key = np.column_stack([par, np.floor(np.log(sc) / p.bin_log),
                           np.floor(np.degrees(np.angle(a)) / p.bin_deg),
                           np.floor(t.real / tb), np.floor(t.imag / tb)]).astype(np.int64)
    uniq, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    lookup = {tuple(u): c for u, c in zip(uniq.tolist(), counts.tolist(), strict=True)}
    support = np.empty(len(uniq), int)
    for j, u in enumerate(uniq.tolist()):
        s = 0
        for da in (-1, 0, 1):
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    s += lookup.get((u[0], u[1], u[2] + da, u[3] + dx, u[4] + dy), 0)
        support[j] = s
    return inverse.ravel(), support


def propose(src_xy, cat_xy, *, scale_bounds=None, parity=None, max_proposals=100,
            tuning=None, **keywords):
    """Candidate similarity transforms from matching triangles, best-supported first.

    Parameters
    ----------
    src_xy : (N, 2) array
        Pixel positions of the brightest detected stars.
    cat_xy : (M, 2) array
        Tangent-plane positions (arcsec) of the brightest catalog stars.
    scale_bounds : (float, float) or None
        Allowed arcsec/pixel range.
    parity : {-1, 1, None}
        Required determinant sign of the transform, or None for either.
    max_proposals : int
        Most proposals returned.
    tuning : PatternTuning, optional
        ``k``, ``tol``, ``min_side_pix``, ``bin_pix``, ``bin_deg``, ``bin_log``; any of them
        may also be given as a keyword (the keywords this function took).

    Returns
    -------
    proposals : list of (Similarity, votes, source triangle vertices, catalog triangle vertices)
    n_pairs : int
        Number of triangle pairs that passed the shape, scale and parity tests (the number of
        hypotheses that the search implicitly considered).
    """
    p = PatternTuning.from_keywords(tuning, **keywords)
    pairs = _triangle_pairs(src_xy, cat_xy, scale_bounds, parity, p)
    if pairs is None:
        return [], 0
    sv, sl, cv, i_s, i_c, par = pairs
    a, b = _similarities(src_xy, cat_xy, sv, cv, i_s, i_c, par)
    inverse, support = _vote(src_xy, a, b, par, p)
    best_bins = np.argsort(-support, kind="stable")[:max_proposals]
    proposals = []
    for j in best_bins:
        members = np.flatnonzero(inverse == j)
        # the member with the largest triangle has the best lever arm
        m = members[np.argmax(sl[i_s[members]])]
        proposals.append((Similarity(complex(a[m]), complex(b[m]), int(par[m])),
                          int(support[j]), sv[i_s[m]], cv[i_c[m]]))
    return proposals, int(i_s.size)


def false_alarm_log10(n_match, expected, n_trials):
    """log10 of the probability that chance alone lines up ``n_match`` stars or more.

    ``expected`` is the mean number of chance coincidences for one hypothesis (Poisson), and
    ``n_trials`` the number of hypotheses tried (a Bonferroni factor).
    """
    if n_match <= 0:
        return 0.0
    lam = max(expected, 1e-12)
    logsf = poisson.logsf(n_match - 1, lam)
    if not np.isfinite(logsf):  # underflow: first term of the tail, bounded by a geometric sum
        logsf = poisson.logpmf(n_match, lam) - math.log1p(-min(lam / (n_match + 1), 0.999))
    return float(min(0.0, (logsf + math.log(max(n_trials, 1))) / math.log(10)))
