"""Small geometric helpers: gnomonic (TAN) projection and 2-D polynomial design matrices."""

import numpy as np

__all__ = ["project", "deproject", "poly_terms", "design_matrix"]


def project(ra, dec, ra0, dec0):
    """Gnomonic projection of (ra, dec) about (ra0, dec0), all in degrees.

    Returns the standard coordinates ``xi`` (towards east) and ``eta`` (towards north) in
    degrees, the intermediate world coordinates of a FITS TAN WCS whose CRVAL is (ra0, dec0).
    Points more than 90 degrees away get NaN.
    """
    ra = np.deg2rad(np.asarray(ra, dtype=float))
    dec = np.deg2rad(np.asarray(dec, dtype=float))
    a0, d0 = np.deg2rad(ra0), np.deg2rad(dec0)
    cosd, sind = np.cos(dec), np.sin(dec)
    cosda = np.cos(ra - a0)
    den = sind * np.sin(d0) + cosd * np.cos(d0) * cosda
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(den > 0, cosd * np.sin(ra - a0) / den, np.nan)
        eta = np.where(den > 0, (sind * np.cos(d0) - cosd * np.sin(d0) * cosda) / den, np.nan)
    return np.rad2deg(xi), np.rad2deg(eta)


def deproject(xi, eta, ra0, dec0):
    """Inverse of :func:`project`: standard coordinates (degrees) to (ra, dec) in degrees."""
    xi = np.deg2rad(np.asarray(xi, dtype=float))
    eta = np.deg2rad(np.asarray(eta, dtype=float))
    a0, d0 = np.deg2rad(ra0), np.deg2rad(dec0)
    den = np.cos(d0) - eta * np.sin(d0)
    ra = a0 + np.arctan2(xi, den)
    dec = np.arctan2(np.sin(d0) + eta * np.cos(d0), np.hypot(xi, den))
    return np.rad2deg(ra) % 360.0, np.rad2deg(dec)


def poly_terms(degree, min_order=0):
    """Exponents ``(p, q)`` of the monomials ``u**p v**q`` with ``min_order <= p+q <= degree``."""
    return [(p, order - p) for order in range(min_order, degree + 1) for p in range(order, -1, -1)]


def design_matrix(u, v, terms):
    """Columns ``u**p * v**q`` for each ``(p, q)`` in ``terms``."""
    u = np.asarray(u, dtype=float)
    v = np.asarray(v, dtype=float)
    maxp = max(max(p, q) for p, q in terms)
    upow = [np.ones_like(u)]
    vpow = [np.ones_like(v)]
    for _ in range(maxp):
        upow.append(upow[-1] * u)
        vpow.append(vpow[-1] * v)
    return np.column_stack([upow[p] * vpow[q] for p, q in terms])
