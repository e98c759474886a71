"""PSF families for the simulator, drawn pixel-integrated with an exactly known total flux.

The measurement (``glue_zeropoint.photometry``) must not agree with the simulator by
construction (docs/architecture.md section 5, issue 10 point 7), so nothing here is imported from it and
nothing in it should be imported from here: each family below is written from its textbook
formula.

Every family is a unit-integral surface brightness ``evaluate(dx, dy)`` (per pixel area, over
the infinite plane; the normalisation is analytic) and an analytic upper bound
``outside(r)`` of the fraction of the light beyond radius ``r``, which sets the stamp size.
:func:`render_psf` integrates the profile over each pixel by quadrature in nested boxes: in
the core, sub-cells no wider than the profile's smallest scale with 4 x 4 Gauss-Legendre
points each (pixel integrals exact to ~1e-7 of the flux even at FWHM 0.4 pixel), the near
wings 3 x 3 Gauss-Legendre, the far wings at the pixel centre (beyond 15 pixels and 4 FWHM,
where the profile's curvature over a pixel is negligible). The light that falls
outside the stamp is recorded per star, not renormalised away.

Families
--------
:class:`Gaussian`, :class:`Moffat` (any beta > 1; both elliptical with ``ellipticity`` and
``angle``), :class:`Trailed` (any core smeared along a line: tracking error or wind shake),
:class:`Aureole` (a core plus a faint broad Moffat halo holding a few per cent of the light).
:func:`make_psf` builds one from a short text spec (``'moffat:beta=2'``).
"""

from dataclasses import asdict, dataclass, field, replace

import numpy as np

__all__ = ["PSF", "Gaussian", "Moffat", "Trailed", "Aureole", "make_psf", "render_psf"]

_SIG = 2.0 * np.sqrt(2.0 * np.log(2.0))  # FWHM / sigma of a Gaussian


def _rotate(dx, dy, angle):
    """Coordinates along (u) and across (v) a direction ``angle`` degrees from +x towards +y."""
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    return dx * c + dy * s, -dx * s + dy * c


def _axes(fwhm, ellipticity):
    """Major and minor FWHM of an ellipse of geometric-mean ``fwhm`` and ``1 - b/a``."""
    q = 1.0 - ellipticity
    return fwhm / np.sqrt(q), fwhm * np.sqrt(q)


class PSF:
    """Base of the PSF families: a unit-integral profile on the pixel grid.

    Subclasses define :meth:`evaluate`, :meth:`outside`, ``scale`` (the profile's smallest
    length scale in pixels, for the sub-pixel sampling) and ``extent`` (its largest, pixels).
    """

    #: family name
    family = "psf"

    def evaluate(self, dx, dy):
        """Surface brightness (fraction of the total per pixel area) at offsets ``dx, dy``."""
        raise NotImplementedError

    def outside(self, r):
        """An upper bound of the fraction of the light outside radius ``r`` (pixels)."""
        raise NotImplementedError

    def stamp_radius(self, max_outside=2e-4, max_radius=300):
        """Half size (pixels) of the square stamp losing at most ``max_outside`` of the light
        (capped at ``max_radius``; the actual loss is recorded when rendering)."""
        lo, hi = 1.0, float(max_radius)
        if self.outside(hi) > max_outside:
            return int(max_radius)
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if self.outside(mid) > max_outside:
                lo = mid
            else:
                hi = mid
        return int(np.ceil(hi)) + 1

    def measured_fwhm(self, angle=None):
        """FWHM along ``angle`` (degrees; default: the major and minor axis), found numerically
        on the (continuous, not pixel-integrated) profile through its centre."""
        if angle is None:
            a = getattr(self, "angle", getattr(getattr(self, "core", None), "angle", 0.0))
            return self.measured_fwhm(a), self.measured_fwhm(a + 90.0)
        c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
        t = np.linspace(-4 * self.extent - 4, 4 * self.extent + 4, 40001)
        prof = self.evaluate(t * c, t * s)
        half = prof.max() / 2.0
        above = np.nonzero(prof >= half)[0]
        i0, i1 = above[0], above[-1]
        # linear interpolation at both crossings
        left = t[i0 - 1] + (half - prof[i0 - 1]) / (prof[i0] - prof[i0 - 1]) * (t[i0] - t[i0 - 1])
        right = t[i1] + (half - prof[i1]) / (prof[i1 + 1] - prof[i1]) * (t[i1 + 1] - t[i1])
        return float(right - left)

    @property
    def spec(self):
        """A short text spec that :func:`make_psf` turns back into this PSF."""
        d = self.to_dict()
        fam = d.pop("family")
        parts = []
        for k, v in d.items():
            if isinstance(v, dict):
                v = v["family"] + "(" + ",".join(f"{kk}={vv:g}" for kk, vv in v.items()
                                                  if kk != "family") + ")"
                parts.append(f"{k}={v}")
            else:
                parts.append(f"{k}={v:g}")
        return fam + ":" + ",".join(parts)

    def to_dict(self):
        d = {"family": self.family}
        for k, v in asdict(self).items():
            d[k] = v
        for k in ("core", "halo"):
            if k in d and isinstance(getattr(self, k), PSF):
                d[k] = getattr(self, k).to_dict()
        return d

    def __str__(self):
        return self.spec


@dataclass(frozen=True)
class Gaussian(PSF):
    """Elliptical Gaussian; ``fwhm`` is the geometric mean of the axes' FWHM (pixels),
    ``ellipticity`` = 1 - b/a, ``angle`` of the major axis from +x towards +y (degrees)."""

    fwhm: float = 3.0
    ellipticity: float = 0.0
    angle: float = 0.0
    family = "gaussian"

    def __post_init__(self):
        _check(self.fwhm > 0, f"fwhm must be > 0 pixels, got {self.fwhm!r}")
        _check(0 <= self.ellipticity < 1,
               f"ellipticity must be in [0, 1), got {self.ellipticity!r}")

    @property
    def sigmas(self):
        a, b = _axes(self.fwhm, self.ellipticity)
        return a / _SIG, b / _SIG

    @property
    def scale(self):
        return self.sigmas[1]

    @property
    def extent(self):
        return self.sigmas[0] * _SIG

    def evaluate(self, dx, dy):
        sa, sb = self.sigmas
        u, v = _rotate(dx, dy, self.angle)
        return np.exp(-0.5 * ((u / sa) ** 2 + (v / sb) ** 2)) / (2 * np.pi * sa * sb)

    def outside(self, r):
        # the circle of radius r contains the ellipse whose major semi-axis is r
        return float(np.exp(-0.5 * (np.asarray(r) / self.sigmas[0]) ** 2))


@dataclass(frozen=True)
class Moffat(PSF):
    """Elliptical Moffat ``(beta - 1)/(pi a b) (1 + u^2/a^2 + v^2/b^2)^-beta``; ``fwhm`` is the
    geometric mean of the axes' FWHM (pixels), ``beta`` > 1 (2 = broad wings, 5 = nearly
    Gaussian), ``ellipticity`` = 1 - b/a, ``angle`` in degrees."""

    fwhm: float = 3.0
    beta: float = 3.0
    ellipticity: float = 0.0
    angle: float = 0.0
    family = "moffat"

    def __post_init__(self):
        _check(self.fwhm > 0, f"fwhm must be > 0 pixels, got {self.fwhm!r}")
        _check(self.beta > 1, f"beta must be > 1 (finite flux), got {self.beta!r}")
        _check(0 <= self.ellipticity < 1,
               f"ellipticity must be in [0, 1), got {self.ellipticity!r}")

    @property
    def alphas(self):
        k = 2.0 * np.sqrt(2.0 ** (1.0 / self.beta) - 1.0)  # FWHM = k alpha
        a, b = _axes(self.fwhm, self.ellipticity)
        return a / k, b / k

    @property
    def scale(self):
        # near the centre a Moffat is a Gaussian of sigma alpha / sqrt(2 beta) ~ FWHM / 2.35
        return _axes(self.fwhm, self.ellipticity)[1] / _SIG

    @property
    def extent(self):
        return _axes(self.fwhm, self.ellipticity)[0]

    def evaluate(self, dx, dy):
        aa, ab = self.alphas
        u, v = _rotate(dx, dy, self.angle)
        return (self.beta - 1.0) / (np.pi * aa * ab) * (
            1.0 + (u / aa) ** 2 + (v / ab) ** 2) ** (-self.beta)

    def outside(self, r):
        return float((1.0 + (np.asarray(r) / self.alphas[0]) ** 2) ** (1.0 - self.beta))


@dataclass(frozen=True)
class Trailed(PSF):
    """A ``core`` PSF smeared uniformly along a line of ``length`` pixels at ``angle`` degrees
    (tracking error, wind shake): the core integrated along the trail by Gauss-Legendre
    quadrature on segments no longer than its smallest scale (weights summing to one, so the
    integral stays exactly one)."""

    core: PSF = field(default_factory=lambda: Gaussian(2.5))
    length: float = 5.0
    angle: float = 30.0
    family = "trailed"

    def __post_init__(self):
        _check(isinstance(self.core, PSF), f"core must be a PSF, got {self.core!r}")
        _check(self.length >= 0, f"length must be >= 0 pixels, got {self.length!r}")

    @property
    def _offsets(self):
        """Points along the trail and their weights (sum 1): segments no longer than the
        core's smallest scale, 3-point Gauss-Legendre in each."""
        if self.length == 0:
            return np.zeros(1), np.ones(1)
        m = max(1, int(np.ceil(self.length / self.core.scale)))
        nodes, weights = _nodes(m, 3)
        return nodes * self.length, weights

    @property
    def scale(self):
        return self.core.scale

    @property
    def extent(self):
        return self.core.extent + self.length

    @property
    def fwhm(self):
        a, b = self.measured_fwhm()
        return float(np.sqrt(a * b))

    def evaluate(self, dx, dy):
        c, s = np.cos(np.deg2rad(self.angle)), np.sin(np.deg2rad(self.angle))
        out = np.zeros(np.broadcast(dx, dy).shape)
        for t, w in zip(*self._offsets, strict=True):
            out += w * self.core.evaluate(dx - t * c, dy - t * s)
        return out

    def outside(self, r):
        return self.core.outside(max(float(r) - 0.5 * self.length, 0.0))


@dataclass(frozen=True)
class Aureole(PSF):
    """A ``core`` with a faint broad halo (scattered light, a dirty corrector) holding
    ``halo_fraction`` of the light: a round Moffat of ``halo_beta`` whose FWHM is
    ``halo_scale`` times the core's."""

    core: PSF = field(default_factory=lambda: Moffat(3.0, 3.0))
    halo_fraction: float = 0.04
    halo_scale: float = 8.0
    halo_beta: float = 2.5
    family = "aureole"

    def __post_init__(self):
        _check(isinstance(self.core, PSF), f"core must be a PSF, got {self.core!r}")
        _check(0 <= self.halo_fraction < 1,
               f"halo_fraction must be in [0, 1), got {self.halo_fraction!r}")

    @property
    def halo(self):
        return Moffat(self.halo_scale * self.core.fwhm, self.halo_beta)

    @property
    def scale(self):
        return self.core.scale

    @property
    def extent(self):
        return self.core.extent

    @property
    def fwhm(self):
        a, b = self.measured_fwhm()
        return float(np.sqrt(a * b))

    def evaluate(self, dx, dy):
        f = self.halo_fraction
        return (1.0 - f) * self.core.evaluate(dx, dy) + f * self.halo.evaluate(dx, dy)

    def outside(self, r):
        f = self.halo_fraction
        return (1.0 - f) * self.core.outside(r) + f * self.halo.outside(r)

    def to_dict(self):
        d = super().to_dict()
        d["core"] = self.core.to_dict()
        return d


def _check(ok, message):
    if not ok:
        raise ValueError(message)


_FAMILIES = {"gaussian": Gaussian, "moffat": Moffat, "trailed": Trailed, "aureole": Aureole}


def _parse_value(text):
    text = text.strip()
    if "(" in text:  # nested PSF: core=gaussian(fwhm=2)
        name, rest = text.split("(", 1)
        return name + ":" + rest[:rest.rindex(")")]  # resolved with the outer fwhm
    try:
        return float(text)
    except ValueError:
        return text


def _split_top(text):
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def make_psf(spec=None, fwhm=None, **kwargs):
    """A PSF from a family object, a dict (``to_dict()`` form) or a text spec.

    Text specs are ``family[:key=value,...]``, e.g. ``'gaussian'``, ``'moffat:beta=2'``,
    ``'moffat:beta=3,ellipticity=0.3,angle=40'``, ``'trailed:length=6,core=moffat(beta=3)'``,
    ``'aureole:halo_fraction=0.05'``; ``'elliptical'`` is a Moffat beta 3 with ellipticity 0.3.
    ``fwhm`` (pixels) fills in the FWHM of the family (of the core for trailed and aureole)
    where the spec does not give one; extra keyword arguments override the spec's.

    Examples
    --------
    >>> make_psf('moffat:beta=2', fwhm=0.5)
    Moffat(fwhm=0.5, beta=2.0, ellipticity=0.0, angle=0.0)
    """
    if isinstance(spec, PSF):
        return replace(spec, **kwargs) if kwargs else spec
    if spec is None:
        spec = "moffat"
    if isinstance(spec, dict):
        d = dict(spec)
        name = d.pop("family")
        params = {k: (make_psf(v) if isinstance(v, dict) else v) for k, v in d.items()}
    else:
        name, _, rest = str(spec).partition(":")
        name = name.strip().lower()
        params = {}
        for item in _split_top(rest):
            key, eq, val = item.partition("=")
            if not eq:
                raise ValueError(f"PSF spec {spec!r}: expected key=value, got {item!r}")
            params[key.strip()] = _parse_value(val)
    if name == "elliptical":
        name = "moffat"
        params.setdefault("beta", 3.0)
        params.setdefault("ellipticity", 0.3)
        params.setdefault("angle", 35.0)
    params.update(kwargs)
    if name not in _FAMILIES:
        raise ValueError(f"unknown PSF family {name!r}; use one of {sorted(_FAMILIES)} or "
                         "'elliptical'")
    cls = _FAMILIES[name]
    if cls in (Trailed, Aureole):
        core = params.get("core")
        if core is None:
            core = Gaussian(fwhm or 2.5) if cls is Trailed else Moffat(fwhm or 3.0, 3.0)
        elif not isinstance(core, PSF):
            core = make_psf(core, fwhm=fwhm)
        params["core"] = core
    elif fwhm is not None:
        params.setdefault("fwhm", float(fwhm))
    try:
        return cls(**params)
    except TypeError as err:
        raise ValueError(f"PSF spec {spec!r}: {err}") from err


def _nodes(m, g):
    """Quadrature nodes and weights over one pixel ``[-0.5, 0.5]``: ``m`` equal sub-cells,
    each with ``g``-point Gauss-Legendre (weights sum to 1)."""
    t, w = np.polynomial.legendre.leggauss(g)
    centres = -0.5 + (np.arange(m) + 0.5) / m
    nodes = (centres[:, None] + t[None, :] / (2 * m)).ravel()
    weights = np.tile(w / (2 * m), m)
    return nodes, weights


def _integrate_box(psf, xi, yi, px, py, m, g):
    """Integral of the profile over each pixel of the box (pixel centres ``px`` x ``py``;
    pixel area 1) by ``m`` x ``m`` sub-cells of ``g`` x ``g`` Gauss-Legendre points."""
    off, w = _nodes(m, g)
    k = off.size
    sx = (px[:, None] + off[None, :]).ravel() - xi
    sy = (py[:, None] + off[None, :]).ravel() - yi
    prof = psf.evaluate(sx[None, :], sy[:, None]).reshape(py.size, k, px.size, k)
    return np.einsum("iajb,a,b->ij", prof, w, w)


def render_psf(shape, x, y, flux, psf, *, max_outside=2e-4, max_radius=300, image=None):
    """Add pixel-integrated stars of total ``flux`` drawn with ``psf`` to an image.

    Parameters
    ----------
    shape : tuple
        (ny, nx).
    x, y : array
        0-based pixel centres of the stars (pixel ``i`` covers ``[i - 0.5, i + 0.5]``).
    flux : array
        Total flux of each star (its integral over the whole plane).
    psf : PSF or spec, or a sequence of them (one per star)
    max_outside : float
        Stamp size: light outside the stamp at most this fraction (see ``PSF.stamp_radius``).
    image : ndarray, optional
        Add to this image (float64) instead of a new one.

    Returns
    -------
    image : ndarray
    frac : dict of arrays
        ``stamp``: fraction of each star's light inside its stamp (the pixel integrals
        summed, over the whole stamp even where it leaves the image); ``image``: fraction that
        landed on the image's pixels; ``outside``: 1 - ``stamp``, the light lost beyond the
        stamp (not renormalised).
    """
    ny, nx = shape
    image = np.zeros(shape, dtype=np.float64) if image is None else image
    x = np.atleast_1d(np.asarray(x, float))
    y = np.atleast_1d(np.asarray(y, float))
    flux = np.broadcast_to(np.asarray(flux, float), x.shape)
    psfs = psf if isinstance(psf, list | tuple) else [psf] * x.size
    stamp_frac = np.zeros(x.size)
    image_frac = np.zeros(x.size)
    cache = {}
    for k, (xi, yi, fi, p) in enumerate(zip(x, y, flux, psfs, strict=True)):
        key = id(p)
        if key not in cache:
            p = make_psf(p)
            radius = p.stamp_radius(max_outside, max_radius)
            # core: sub-cells no wider than the profile's smallest scale, 4-point Gauss-
            # Legendre in each (exact to ~1e-7 per pixel even at FWHM 0.4); near wings:
            # 3-point Gauss-Legendre per pixel; far wings (r > 15 px and 4 FWHM, where the
            # profile's curvature over a pixel is below ~1e-3 of its value): the pixel centre
            m_core = int(min(24, max(1, np.ceil(1.0 / p.scale))))
            r_core = int(np.ceil(1.5 * p.extent)) + 3
            r_mid = max(int(np.ceil(4.0 * p.extent)) + 4, 15)
            tiers = [(radius, 1, 1)]
            if r_mid < radius:
                tiers.append((r_mid, 1, 3))
            tiers.append((min(r_core, radius), m_core, 4))
            cache[key] = (p, radius, tiers)
        p, radius, tiers = cache[key]
        cx, cy = int(np.round(xi)), int(np.round(yi))
        grid = np.arange(-radius, radius + 1)
        stamp = np.empty((grid.size, grid.size))
        for r, m, g in tiers:
            sl = slice(radius - r, radius + r + 1)
            stamp[sl, sl] = _integrate_box(p, xi, yi, grid[sl] + cx, grid[sl] + cy, m, g)
        stamp_frac[k] = stamp.sum()
        x0, x1 = max(cx - radius, 0), min(cx + radius + 1, nx)
        y0, y1 = max(cy - radius, 0), min(cy + radius + 1, ny)
        if x0 >= x1 or y0 >= y1:
            continue
        part = stamp[y0 - (cy - radius):y1 - (cy - radius), x0 - (cx - radius):x1 - (cx - radius)]
        image_frac[k] = part.sum()
        image[y0:y1, x0:x1] += fi * part
    return image, {"stamp": stamp_frac, "image": image_frac, "outside": 1.0 - stamp_frac}
