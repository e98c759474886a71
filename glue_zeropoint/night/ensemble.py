"""The night's own stars: one identity per star across frames, and each frame's offset.

:func:`group_stars` gives every detection a night-wide star number: positions (sky offsets
in arcsec from the field centre, or pixels for frames without WCS) are aligned to a
reference frame by the mode of the pairwise shifts of the bright stars (so dithers and
drifts of a frame without WCS are followed), then matched within a radius.

:func:`ensemble_offsets` solves ``m_inst[j, s] = M_s + D_j`` (weighted, clipped: variables
and blends drop out) for the frames of one band: ``D_j`` is how much fainter frame ``j`` is
than the night's mean. ``-D_j`` plays the role of a zero point without a catalog (the
extinction fit then gives k and the clouds offline), and ``10**(-0.4 (D_j - D_best))`` is
the transparency relative to the night's best frame.
"""

import numpy as np
from scipy.spatial import cKDTree

from ..stats import MAD_TO_SIGMA

__all__ = ["group_stars", "ensemble_offsets", "EnsembleResult"]


def _shift(ref, pos, max_pairs=40, tol=2.0):
    """Translation taking ``pos`` onto ``ref`` (both (n, 2), brightest first)."""
    a, b = ref[:max_pairs], pos[:max_pairs]
    if len(a) < 2 or len(b) < 2:
        return np.zeros(2)
    d = (a[:, None, :] - b[None, :, :]).reshape(-1, 2)
    tree = cKDTree(d)
    counts = tree.query_ball_point(d, tol, return_length=True)
    best = d[np.argmax(counts)]
    near = np.linalg.norm(d - best, axis=1) < tol
    return np.median(d[near], axis=0)


def group_stars(positions, radius, *, align=True, reference=None):
    """Night-wide star ids.

    Parameters
    ----------
    positions : list of (n_j, 2) arrays
        Per frame, brightest first (sky offsets in arcsec or pixels).
    radius : float
        Match radius in the same unit.
    align : bool
        Estimate and remove each frame's shift to the reference first.
    reference : int, optional
        Reference frame (default the one with the most stars).

    Returns
    -------
    ids : list of int arrays (per frame; -1 never happens, new stars get new ids)
    shifts : (n_frames, 2) array
    """
    n = len(positions)
    if n == 0:
        return [], np.zeros((0, 2))
    if reference is None:
        reference = int(np.argmax([len(p) for p in positions]))
    ref = np.asarray(positions[reference], float).reshape(-1, 2)
    total = sum(len(np.asarray(p).reshape(-1, 2)) for p in positions)
    master = np.empty((max(total, 1), 2))  # every star's first position, in id order
    master[:len(ref)] = ref
    n_master = len(ref)
    ids = [None] * n
    shifts = np.zeros((n, 2))
    order = [reference] + [i for i in range(n) if i != reference]
    for j in order:
        pos = np.asarray(positions[j], float).reshape(-1, 2)
        if align and j != reference and len(pos):
            shifts[j] = _shift(ref, pos, tol=max(radius, 1e-6))
        p = pos + shifts[j]
        out = np.full(len(p), -1, int)
        if n_master and len(p):
            dist, k = cKDTree(master[:n_master]).query(p, distance_upper_bound=radius)
            # closest first, each star claimed once: the first of each id in distance order
            by_dist = np.argsort(dist)
            by_dist = by_dist[np.isfinite(dist[by_dist])]
            _, first = np.unique(k[by_dist], return_index=True)
            claim = by_dist[first]
            out[claim] = k[claim]
        new = np.flatnonzero(out < 0)
        master[n_master:n_master + new.size] = p[new]
        out[new] = n_master + np.arange(new.size)
        n_master += new.size
        ids[j] = out
    return ids, shifts


#: stars an ensemble should rest on before its error cut is relaxed
MIN_ENSEMBLE_STARS = 5


def _error_cut(e_star, often, max_err):
    """The error cut of the ensemble's stars: ``max_err``, unless fewer than
    :data:`MIN_ENSEMBLE_STARS` stars seen often enough pass it (8-bit or short frames, where
    even the brightest stars have errors of ~0.1 mag): then the error of the
    ``MIN_ENSEMBLE_STARS``-th best such star, so the frames still get offsets (with the
    larger errors those stars give them) instead of none."""
    errs = np.sort(e_star[often])
    if len(errs) == 0 or np.sum(errs <= max_err) >= MIN_ENSEMBLE_STARS:
        return max_err
    return float(errs[min(MIN_ENSEMBLE_STARS, len(errs)) - 1])


class EnsembleResult:
    """Per-frame offsets ``D`` (mag), their errors, the stars used and the star means."""

    def __init__(self, offset, offset_err, n_stars, star_mean, star_used, best, max_err=None):
        self.max_err = max_err  # the error cut the stars passed (relaxed when few did)
        self.offset = offset
        self.offset_err = offset_err
        self.n_stars = n_stars
        self.star_mean = star_mean
        self.star_used = star_used
        self.best = best

    @property
    def relative_transparency(self):
        """``10**(-0.4 (D_j - D_best))``: 1 for the night's best frame."""
        return 10.0 ** (-0.4 * (self.offset - self.offset[self.best]))


def ensemble_offsets(frame_index, star_id, mag, mag_err, n_frames, *, min_frames=None,
                     max_err=0.05, clip=4.0, n_iter=8, floor=0.003):
    """Solve ``mag[j, s] = M_s + D_j`` over the detections of one band (module docstring).

    Parameters
    ----------
    frame_index, star_id, mag, mag_err : arrays, one entry per detection
    n_frames : int
    min_frames : int, optional
        Stars seen in fewer frames are not used (default half the frames, at least 2).
    max_err : float
        Stars with a larger typical error are not used (relaxed to the
        :data:`MIN_ENSEMBLE_STARS`-th best star's error when fewer pass it).

    Returns
    -------
    EnsembleResult
        ``offset`` has mean 0 over the frames that have one; NaN for a frame without stars.
    """
    fi = np.asarray(frame_index, int)
    sid = np.asarray(star_id, int)
    m = np.asarray(mag, float)
    e = np.hypot(np.asarray(mag_err, float), floor)
    ok = np.isfinite(m) & np.isfinite(e)
    fi, sid, m, e = fi[ok], sid[ok], m[ok], e[ok]
    if min_frames is None:
        min_frames = max(2, n_frames // 2)
    if len(sid) == 0:
        nan = np.full(n_frames, np.nan)
        return EnsembleResult(nan, nan, np.zeros(n_frames, int), {}, np.zeros(0, bool), 0)
    stars, sidx = np.unique(sid, return_inverse=True)
    seen = np.bincount(sidx, minlength=len(stars))
    # a star's typical error (median over its detections): weights and the error cut use it,
    # not each detection's own error, which is computed from its noisy flux (a detection
    # that came out bright would weigh more: a bias of ~0.2 sigma on k in simulated nights)
    order = np.lexsort((e, sidx))
    starts = np.searchsorted(sidx[order], np.arange(len(stars)))
    e_star = e[order][np.minimum(starts + seen // 2, len(e) - 1)]
    max_err = _error_cut(e_star, seen >= min_frames, max_err)
    keep = (seen[sidx] >= min_frames) & (e_star[sidx] <= max_err)
    fi, sidx, m, e = fi[keep], sidx[keep], m[keep], e[keep]
    D = np.zeros(n_frames)
    M = np.zeros(len(stars))
    good = np.ones(len(m), bool)
    for _ in range(n_iter):
        for _ in range(30):  # alternate to convergence before any clipping
            # predicted error: the star's typical error scaled by the frame's dimming
            dd = np.nan_to_num(D - np.nanmedian(D))
            e = e_star[sidx] * 10 ** (0.4 * np.clip(dd[fi], -1, 3))
            w = 1.0 / e ** 2
            ww = w * good
            num = np.bincount(sidx, ww * (m - D[fi]), len(stars))
            den = np.bincount(sidx, ww, len(stars))
            M = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
            num = np.bincount(fi, ww * (m - np.nan_to_num(M[sidx])), n_frames)
            den = np.bincount(fi, ww, n_frames)
            D_new = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
            D_new -= np.nanmean(D_new)
            done = np.nanmax(np.abs(np.nan_to_num(D_new - D))) < 1e-6
            D = D_new
            if done:
                break
        r = (m - M[sidx] - D[fi]) / e
        scale = MAD_TO_SIGMA * np.nanmedian(np.abs(r[good])) if good.any() else 1.0
        new = np.isfinite(r) & (np.abs(r) <= clip * max(scale, 1.0))
        if np.array_equal(new, good):
            break
        good = new
    ww = w * good
    den = np.bincount(fi, ww, n_frames)
    r = m - M[sidx] - D[fi]
    chi2 = np.bincount(fi, ww * r ** 2, n_frames)
    nstar = np.bincount(fi, good.astype(int), n_frames)
    red = np.where(nstar > 1, chi2 / np.maximum(nstar - 1, 1), 1.0)
    err = np.where(den > 0, np.sqrt(np.maximum(red, 1.0) / np.where(den > 0, den, 1)), np.nan)
    valid = np.isfinite(D) & (nstar >= 3)
    D = np.where(valid, D, np.nan)
    best = int(np.nanargmin(D)) if valid.any() else 0
    star_used = np.zeros(len(stars), bool)
    star_used[np.unique(sidx[good])] = True
    return EnsembleResult(D, np.where(valid, err, np.nan), nstar,
                          dict(zip(stars.tolist(), M.tolist(), strict=True)), star_used, best,
                          max_err)
