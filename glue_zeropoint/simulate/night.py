"""Simulate a raw night on disk: biases, darks, flats and lights as an observer stores them.

Three header styles are written:

``'maxim'``
    MaxIm DL / SBIG: ``IMAGETYP`` = 'Bias Frame', 'Dark Frame', 'Flat Field', 'Light Frame';
    gain in ``EGAIN``; ``EXPTIME``; ``FILTER``; ``OBJCTRA``/``OBJCTDEC``; a plate-solved WCS on
    lights.
``'iraf'``
    ``IMAGETYP``/``OBSTYPE`` = ZERO, DARK, SKYFLAT, OBJECT; ``GAIN`` and ``RDNOISE``;
    ``EXPOSURE`` instead of ``EXPTIME``; WCS on lights.
``'thin'``
    Only ``EXPTIME`` and ``DATE-OBS``: type, filter and exposure are in the file names and
    folders (``Darks/dark_20s001.FIT``, ``Darks/dark_40ms001.FIT`` standing in for biases,
    ``Twilight Flats/flat_15s_V003.FIT``, ``M13_20s_Clear001.FIT``); no gain, no WCS.

Raw values are ``uint16`` ADU: ``round((Poisson(signal * flat + dark * t) + N(0, R)) / g + bias)``
clipped at the ADC limit, plus cosmic rays on darks and lights.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.time import Time

from ._settings import SimSettings
from .camera import Camera, make_detector_maps
from .field import FilterTruth, StarField, make_field

__all__ = ["simulate_night", "NightPlan", "NightTruth", "FrameTruth", "DEFAULT_FILTERS"]

DEFAULT_FILTERS = {
    "V": FilterTruth(band="V", zp=21.6, color_term=-0.04, color=("B", "V"), sky_sb=20.3),
    "B": FilterTruth(band="B", zp=21.1, color_term=0.08, color=("B", "V"), sky_sb=21.2),
}


@dataclass
class FrameTruth:
    """One raw file written by the simulator."""

    path: Path
    kind: str  # 'bias', 'dark', 'flat', 'light'
    exptime: float
    filter: str | None = None
    bias_offset: float = 0.0  # per-frame bias drift (ADU)
    cosmic_rays: np.ndarray | None = None  # bool mask of pixels hit
    seed: int = 0


@dataclass
class NightTruth:
    """Everything that is true of a simulated night, for injection-recovery tests."""

    root: Path
    camera: Camera
    field: StarField
    filters: dict
    maps: object
    frames: list = field(default_factory=list)
    style: str = "maxim"

    def of_kind(self, kind, filter=None):
        return [f for f in self.frames if f.kind == kind and (filter is None or f.filter == filter)]

    def expected_electrons(self, frame):
        """Noiseless electrons that reached a light frame's pixels (what calibration recovers)."""
        return self.field.expected_electrons(self.filters[frame.filter], frame.exptime)

    @property
    def bad_pixels(self):
        """Pixels a good calibration should flag: hot and dead pixels."""
        return self.maps.hot | self.maps.dead


def _fmt_exptime(t):
    return f"{int(round(t * 1000))}ms" if t < 1 else f"{t:g}s"


def _names(style, kind, i, exptime, filt, obj):
    n = f"{i + 1:03d}"
    if style == "maxim":
        return {"bias": f"Bias-{n}.fit", "dark": f"Dark-{exptime:g}s-{n}.fit",
                "flat": f"Flat-{filt}-{n}.fit",
                "light": f"{obj}-{filt}-{exptime:g}s-{n}.fit"}[kind]
    if style == "iraf":
        return {"bias": f"zero{n}.fits", "dark": f"dark{exptime:g}s{n}.fits",
                "flat": f"skyflat{filt}{n}.fits", "light": f"obj{filt}{exptime:g}s{n}.fits"}[kind]
    # thin: only the file name (and folder) tells
    t = _fmt_exptime(exptime)
    return {"bias": f"Darks/dark_{t}{n}.FIT", "dark": f"Darks/dark_{t}{n}.FIT",
            "flat": f"Twilight Flats/flat_{t}_{filt}{n}.FIT",
            "light": f"{obj}_{t}_{filt}{n}.FIT"}[kind]


_TYPES = {
    "maxim": {"bias": "Bias Frame", "dark": "Dark Frame", "flat": "Flat Field",
              "light": "Light Frame"},
    "iraf": {"bias": "ZERO", "dark": "DARK", "flat": "SKYFLAT", "light": "OBJECT"},
}


def _header(style, kind, exptime, filt, camera, date, obj, field_, write_wcs, shape):
    h = fits.Header()
    if style == "iraf":
        h["EXPOSURE"] = (float(exptime), "exposure time (s)")
    else:
        h["EXPTIME"] = (float(exptime), "exposure time (s)")
    h["DATE-OBS"] = date
    if style != "thin":
        h["IMAGETYP"] = _TYPES[style][kind]
        h["XBINNING"] = 1
        h["YBINNING"] = 1
        h["INSTRUME"] = "SimCam"
        h["CCD-TEMP"] = -20.0
        if style == "maxim":
            h["EGAIN"] = (camera.gain, "electrons per ADU")
        else:
            h["OBSTYPE"] = _TYPES[style][kind]
            h["GAIN"] = (camera.gain, "electrons per ADU")
            h["RDNOISE"] = (camera.read_noise, "read noise (e-)")
            h["SATURATE"] = camera.saturation_adu
        if filt is not None:
            h["FILTER"] = filt
        if kind == "light":
            h["OBJECT"] = obj
            c = field_.wcs.wcs.crval
            from astropy.coordinates import Angle

            h["OBJCTRA"] = Angle(c[0], "deg").to_string("hourangle", sep=" ", precision=1)
            h["OBJCTDEC"] = Angle(c[1], "deg").to_string(sep=" ", precision=0, alwayssign=True)
            if write_wcs:
                h.update(field_.wcs.to_header(relax=True))
    if camera.overscan:
        ny, nx = shape
        # skip the first overscan columns (charge-transfer tail) when there are enough of them
        first = nx + 1 + min(2, camera.overscan - 1)
        h["BIASSEC"] = f"[{first}:{nx + camera.overscan},1:{ny}]"
        h["TRIMSEC"] = f"[1:{nx},1:{ny}]"
    return h


def _cosmic_rays(shape, n, rng):
    """Short tracks of 1-4 pixels carrying 500-20000 e- each."""
    hits = np.zeros(shape, dtype=np.float64)
    ny, nx = shape
    for _ in range(n):
        x, y = rng.integers(2, nx - 6), rng.integers(2, ny - 6)
        length = rng.integers(1, 5)
        dx, dy = rng.choice([0, 1], 2)
        for k in range(length):
            hits[y + k * dy, x + k * dx] += rng.uniform(500, 20000)
    return hits


@dataclass
class NightPlan(SimSettings):
    """Which frames :func:`simulate_night` takes (serialisable).

    Attributes
    ----------
    n_bias : int
        Biases; in the 'thin' style these are 40 ms darks.
    n_dark : int
        Darks per exposure time.
    dark_exptimes : sequence of float
        One set of ``n_dark`` darks per exposure time.
    n_flat : int
        Flats per filter (every filter that has lights).
    flat_exptime : float
    flat_level : float
        Mean electrons per pixel in a flat (each flat 0.8-1.2 times it: twilight fades).
    lights : sequence of (filter, exptime, count)
    object_name : str
    cosmic_rays : int
        Cosmic rays per dark and light.
    write_wcs : bool, optional
        Write the WCS into the light headers (default: except in the 'thin' style).
    date : str
        DATE-OBS of the first frame (ISO); one frame a minute after it.
    """

    n_bias: int = 9
    n_dark: int = 5
    dark_exptimes: tuple = (20.0,)
    n_flat: int = 5
    flat_exptime: float = 5.0
    flat_level: float = 20000.0
    lights: tuple = (("V", 20.0, 2),)
    object_name: str = "M13"
    cosmic_rays: int = 20
    write_wcs: bool | None = None
    date: str = "2024-07-01T22:00:00"


@dataclass
class _FrameWriter:
    """Writes the frames of a simulated night one after the other (frame ``n`` draws its
    noise from the stream ``[seed, n]``, its DATE-OBS ``n`` minutes after the first)."""

    root: Path
    style: str
    shape: tuple
    seed: int
    camera: Camera
    maps: object
    star_field: StarField
    truth: NightTruth
    plan: NightPlan
    write_wcs: bool
    n: int = 0

    def _adu(self, frame_rng, electrons, cr):
        camera, shape = self.camera, self.shape
        signal = frame_rng.poisson(np.clip(electrons, 0, None)).astype(np.float64)
        signal += frame_rng.normal(0.0, camera.read_noise, shape)
        if cr is not None:
            signal += cr
        offset = frame_rng.normal(0.0, camera.bias_drift) if camera.bias_drift else 0.0
        adu = signal / camera.gain + self.maps.bias + offset
        if camera.overscan:
            over = camera.bias_level + offset + frame_rng.normal(
                0.0, camera.read_noise / camera.gain, (shape[0], camera.overscan))
            adu = np.hstack([adu, over])
        return np.clip(np.round(adu), 0, camera.saturation_adu).astype(np.uint16), offset

    def write(self, kind, i, exptime, filt, electrons, cr):
        self.n += 1
        frame_rng = np.random.default_rng([self.seed, self.n])
        adu, offset = self._adu(frame_rng, electrons, cr)
        date_obs = (Time(self.plan.date) + self.n * 60.0 * u.s).isot
        name = _names(self.style, kind, i, exptime, filt, self.plan.object_name)
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        hdr = _header(self.style, kind, exptime, filt if kind in ("flat", "light") else None,
                      self.camera, date_obs, self.plan.object_name, self.star_field,
                      self.write_wcs, self.shape)
        fits.PrimaryHDU(adu, header=hdr).writeto(path, overwrite=True)
        self.truth.frames.append(FrameTruth(path=path, kind=kind, exptime=float(exptime),
                                            filter=filt, bias_offset=offset,
                                            cosmic_rays=None if cr is None else cr > 0,
                                            seed=self.n))


def _write_frames(w, rng, light_filters, filters):
    """Biases, darks, flats, lights, in that order (``rng``: cosmic rays, flat levels)."""
    plan, maps, shape = w.plan, w.maps, w.shape
    bias_t = 0.04 if w.style == "thin" else 0.0
    for i in range(plan.n_bias):
        w.write("bias", i, bias_t, None, maps.dark_rate * bias_t, None)
    for t in plan.dark_exptimes:
        for i in range(plan.n_dark):
            cr = _cosmic_rays(shape, plan.cosmic_rays, rng) if plan.cosmic_rays else None
            w.write("dark", i, t, None, maps.dark_rate * t, cr)
    for f in light_filters:
        for i in range(plan.n_flat):
            level = plan.flat_level * rng.uniform(0.8, 1.2)  # twilight fades between flats
            w.write("flat", i, plan.flat_exptime, f,
                    level * maps.flats[f] + maps.dark_rate * plan.flat_exptime, None)
    for f, t, count in plan.lights:
        expected = w.star_field.expected_electrons(filters[f], t)
        for i in range(count):
            cr = _cosmic_rays(shape, plan.cosmic_rays, rng) if plan.cosmic_rays else None
            w.write("light", i, t, f, expected * maps.flats[f] + maps.dark_rate * t, cr)


def simulate_night(root, *, style="maxim", shape=(512, 512), seed=0, camera=None,
                   filters=None, field_kwargs=None, plan=None, **keywords):
    """Write a raw night into ``root`` and return its :class:`NightTruth`.

    Parameters
    ----------
    root : path
        Folder to write into (created).
    style : {'maxim', 'iraf', 'thin'}
        Header convention (see module docstring).
    shape : tuple
        Active-area shape (ny, nx); overscan columns, if any, are added.
    seed : int
    camera : `Camera`, optional
        Detector truth (default ``Camera()``; in the 'thin' style nothing of it is in the headers).
    filters : dict, optional
        ``{filter name: FilterTruth}``; default V and B (:data:`DEFAULT_FILTERS`). Flats are
        taken in every filter that has lights.
    field_kwargs : dict, optional
        Passed to :func:`~glue_zeropoint.simulate.make_field` (default 300 stars).
    plan : NightPlan, optional
        The frames: ``n_bias``, ``n_dark``, ``dark_exptimes``, ``n_flat``, ``flat_exptime``,
        ``flat_level``, ``lights`` (sequence of (filter, exptime, count)), ``object_name``,
        ``cosmic_rays``, ``write_wcs``, ``date`` (see :class:`NightPlan`).
    **keywords
        Any NightPlan field, overriding ``plan`` (the keywords this function always took).
    """
    if style not in ("maxim", "iraf", "thin"):
        raise ValueError(f"style must be 'maxim', 'iraf' or 'thin', not {style!r}")
    plan = NightPlan.from_keywords(plan, **keywords)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    camera = Camera() if camera is None else camera
    filters = dict(DEFAULT_FILTERS if filters is None else filters)
    light_filters = list(dict.fromkeys(f for f, _, _ in plan.lights))
    for f in light_filters:
        if f not in filters:
            raise ValueError(f"no FilterTruth for filter {f!r}; give filters={{...}}")
    fk = {"n_stars": 300, "seed": seed}
    fk.update(field_kwargs or {})
    star_field = make_field(shape, **fk)
    maps = make_detector_maps(camera, shape, light_filters, rng)
    write_wcs = style != "thin" if plan.write_wcs is None else plan.write_wcs
    truth = NightTruth(root=root, camera=camera, field=star_field, filters=filters, maps=maps,
                       style=style)
    writer = _FrameWriter(root=root, style=style, shape=shape, seed=seed, camera=camera,
                          maps=maps, star_field=star_field, truth=truth, plan=plan,
                          write_wcs=write_wcs)
    _write_frames(writer, rng, light_filters, filters)
    return truth
