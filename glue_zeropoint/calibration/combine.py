"""Sigma-clipped median/mean combine of many frames, chunked over rows, compiled single pass.

The frames are never all in memory: :func:`combine_frames` asks each frame for a block of rows,
stacks the block, and a numba kernel combines every pixel of it in one pass: the values of a
row of pixels are sorted together by a branch-free sorting network (missing values as +inf,
which the compiler vectorises), then each pixel is clipped around its median and the median or
mean of what is kept is taken. Peak
memory is ``chunk_bytes`` plus the output, whatever the number of frames.

Clipping uses the known noise of a pixel when a noise model is given (``variance = a *
max(centre, 0) + b`` in the units of the stack, e.g. ``a = 1, b = R**2`` for frames in
electrons) and a MAD estimate otherwise. The known noise is what lets a 5-frame stack reject a
cosmic ray: with 5 values, a standard-deviation clip can never reject anything at 3 sigma.
"""

import math

import numpy as np
from numba import njit, prange

from ..progress import report
from ..stats import MAD_TO_SIGMA

__all__ = ["combine_frames", "median_variance_factor", "combine_block", "sorting_network"]

# n * var(median of n unit normals): 1 for n = 1, 2; -> pi/2 for large odd n (Monte Carlo,
# 4e5 draws each, +-0.3%). Even n are lower because the median averages the two middle values.
_MEDIAN_FACTOR = np.array([
    1.0, 1.0, 1.0, 1.344, 1.198, 1.430, 1.288, 1.472, 1.347, 1.494, 1.379, 1.517, 1.405, 1.522,
    1.426, 1.526, 1.444, 1.529, 1.456, 1.538, 1.469, 1.541, 1.477, 1.542, 1.486, 1.538, 1.489,
    1.540, 1.494, 1.543, 1.495])  # index n = 0 .. 30


def median_variance_factor(n):
    """Variance of the median of ``n`` normal values relative to their mean's (``sigma^2/n``).

    Parameters
    ----------
    n : int or array of int
        Number of values combined.

    Returns
    -------
    float or ndarray
        1 for n <= 2, 1.344 for n = 3, ... tending to pi/2; arrays give arrays.
    """
    n = np.asarray(n)
    top = max(int(n.max(initial=0)) + 1, _MEDIAN_FACTOR.size)
    table = np.empty(top)
    table[: _MEDIAN_FACTOR.size] = _MEDIAN_FACTOR
    extra = np.arange(_MEDIAN_FACTOR.size, top)
    # beyond the table: pi/2 (1 - c/n), with c per parity matched to the last tabulated
    # value, so the factor keeps rising towards pi/2 (even n approach it much more slowly)
    last = _MEDIAN_FACTOR.size - 1
    c = {k % 2: k * (1.0 - _MEDIAN_FACTOR[k] / (math.pi / 2)) for k in (last - 1, last)}
    table[_MEDIAN_FACTOR.size:] = (math.pi / 2) * (1.0 - np.where(extra % 2 == 1, c[1], c[0])
                                                   / extra)
    result = table[np.maximum(n, 0)]
    return result if result.ndim else float(result)


@njit(cache=True, inline="always")
def _sort(buf, n):
    for i in range(1, n):  # insertion sort: fastest for the few values of a pixel
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v


@njit(cache=True, inline="always")
def _median_sorted(buf, lo, hi):
    m = hi - lo
    mid = lo + m // 2
    if m % 2 == 1:
        return buf[mid]
    return 0.5 * (buf[mid - 1] + buf[mid])


def sorting_network(n):
    """Compare-exchange pairs (a < b) that sort ``n`` values: Batcher's odd-even merge sort.

    Built for the next power of two and pruned: with the missing values taken as +inf, every
    comparator touching them is a no-op.
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        a, b = i + j, i + j + k
                        if b < n:
                            pairs.append((a, b))
            k //= 2
        p *= 2
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


@njit(parallel=True, cache=True)
def _combine_kernel(stack, pairs, use_median, nsigma, maxiters, var_a, var_b, use_model,
                    out, nused):
    nframes, ny, nx = stack.shape
    npairs = pairs.shape[0]
    for j in prange(ny):
        # sort every pixel's values at once with a branch-free sorting network (vectorises)
        buf = np.empty((nframes, nx), dtype=np.float32)
        for k in range(nframes):
            for i in range(nx):
                v = stack[k, j, i]
                buf[k, i] = v if v == v else np.inf
        for p in range(npairs):
            a = pairs[p, 0]
            b = pairs[p, 1]
            for i in range(nx):
                x = buf[a, i]
                y = buf[b, i]
                buf[a, i] = min(x, y)
                buf[b, i] = max(x, y)
        dev = np.empty(nframes, dtype=np.float64)
        for i in range(nx):
            n = 0
            while n < nframes and buf[n, i] < np.inf:
                n += 1
            if n == 0:
                out[j, i] = np.nan
                nused[j, i] = 0
                continue
            lo = 0
            hi = n
            for _ in range(maxiters):
                if hi - lo < 3:
                    break
                m = hi - lo
                mid = lo + m // 2
                if m % 2 == 1:
                    centre = np.float64(buf[mid, i])
                else:
                    centre = 0.5 * (np.float64(buf[mid - 1, i]) + buf[mid, i])
                if use_model:
                    s = math.sqrt(max(var_a * max(centre, 0.0) + var_b, 0.0))
                else:
                    for k in range(m):
                        dev[k] = abs(buf[lo + k, i] - centre)
                    _sort(dev, m)
                    s = MAD_TO_SIGMA * _median_sorted(dev, 0, m)
                if not s > 0.0:
                    break
                new_lo = lo
                new_hi = hi
                while new_lo < new_hi and buf[new_lo, i] < centre - nsigma * s:
                    new_lo += 1
                while new_hi > new_lo and buf[new_hi - 1, i] > centre + nsigma * s:
                    new_hi -= 1
                if new_hi - new_lo < 1 or (new_lo == lo and new_hi == hi):
                    break
                lo = new_lo
                hi = new_hi
            m = hi - lo
            if use_median:
                mid = lo + m // 2
                if m % 2 == 1:
                    out[j, i] = buf[mid, i]
                else:
                    out[j, i] = 0.5 * (np.float64(buf[mid - 1, i]) + buf[mid, i])
            else:
                total = 0.0
                for k in range(lo, hi):
                    total += buf[k, i]
                out[j, i] = total / m
            nused[j, i] = m


def combine_block(stack, method="median", *, sigma=3.0, maxiters=5, noise=None):
    """Sigma-clipped combine of a stack ``(n_frames, ny, nx)``; NaN values are left out.

    Parameters
    ----------
    stack : ndarray
        float32 values; NaN marks a value to leave out (e.g. a saturated pixel).
    method : {'median', 'mean'}
        Combination of the values that survive clipping (the clipping centre is the median).
    sigma : float
        Clip values further than ``sigma`` standard deviations from the median.
    maxiters : int
        Clipping iterations.
    noise : tuple (a, b), optional
        Noise model: variance of one value is ``a * max(centre, 0) + b``. Without it the
        standard deviation is estimated from the MAD of the values of each pixel.

    Returns
    -------
    combined : ndarray (float32)
        NaN where no value was usable.
    n_used : ndarray (int16)
        Number of values kept per pixel.
    """
    if method not in ("median", "mean"):
        raise ValueError(f"combine method must be 'median' or 'mean', not {method!r}")
    stack = np.ascontiguousarray(stack, dtype=np.float32)
    out = np.empty(stack.shape[1:], dtype=np.float32)
    nused = np.empty(stack.shape[1:], dtype=np.int16)
    a, b = (0.0, 0.0) if noise is None else (float(noise[0]), float(noise[1]))
    _combine_kernel(stack, sorting_network(stack.shape[0]), method == "median", float(sigma),
                    int(maxiters), a, b, noise is not None, out, nused)
    return out, nused


def combine_frames(sources, shape, method="median", *, sigma=3.0, maxiters=5, noise=None,
                   chunk_bytes=64 * 2 ** 20, progress=None, message="combining"):
    """Combine frames read a block of rows at a time (bounded memory).

    Parameters
    ----------
    sources : sequence of callable
        ``source(y0, y1, out)`` writes rows ``y0:y1`` of one frame into the float32 array
        ``out`` of shape ``(y1 - y0, nx)``, NaN for values to leave out.
    shape : tuple
        (ny, nx) of every frame.
    method, sigma, maxiters, noise
        See :func:`combine_block`.
    chunk_bytes : int
        Size of the stacked block; sets the peak memory.
    progress : callable, optional
        Called as ``progress(frames_read, n_frames, message)`` after each block (fractional
        frames read, as an int).

    Returns
    -------
    combined : ndarray (float32)
    n_used : ndarray (int16)
    """
    ny, nx = shape
    n = len(sources)
    if n == 0:
        raise ValueError("nothing to combine")
    rows = int(max(1, min(ny, chunk_bytes // max(1, n * nx * 4))))
    out = np.empty(shape, dtype=np.float32)
    nused = np.empty(shape, dtype=np.int16)
    stack = np.empty((n, rows, nx), dtype=np.float32)
    for y0 in range(0, ny, rows):
        y1 = min(ny, y0 + rows)
        block = stack[:, : y1 - y0]
        for k, source in enumerate(sources):
            source(y0, y1, block[k])
        out[y0:y1], nused[y0:y1] = combine_block(block, method, sigma=sigma,
                                                 maxiters=maxiters, noise=noise)
        report(progress, int(n * y1 / ny), n, message)
    return out, nused
