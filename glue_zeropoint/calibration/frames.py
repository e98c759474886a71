"""Find the raw frames of a night and tell what each one is.

Frame type from ``IMAGETYP``/``FRAMETYP``/``OBSTYPE``, else the file name and folder; exposure
from ``EXPTIME``/``EXPOSURE``, else the file name (``20s``, ``40ms``, ``0.5s``); filter from
``FILTER``, else the file name; gain ``GAIN``/``EGAIN``; read noise ``RDNOISE``/``READNOIS``/
``RON``/``READNOISE`` (the keyword chains of :mod:`glue_zeropoint.headers`).
Every guess is logged and kept on the frame (:attr:`RawFrame.guesses`), never silent.
"""

import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

from ..exceptions import CalibrationWarning, InputError
from ..headers import (
    EXPTIME_KEYS,
    FILTER_KEYS,
    GAIN_KEYS,
    READ_NOISE_KEYS,
    header_text,
    header_value,
    unusable_values,
)
from ..io import FITS_SUFFIXES, fits_stem
from ..progress import report
from .manifest import MANIFEST_NAME, is_product
from .sections import PixelReader, count_image_hdus, find_image_hdu, no_image_reason

__all__ = ["RawFrame", "FrameList", "scan_frames", "frame_type_from_header",
           "frame_type_from_name", "exptime_from_name", "filter_from_name",
           "SHORT_DARK_MAX"]

log = logging.getLogger(__name__)

KINDS = ("bias", "dark", "flat", "light")
TYPE_KEYS = ("IMAGETYP", "FRAMETYP", "OBSTYPE")
SHORT_DARK_MAX = 0.1  # s: darks this short stand in for biases when there are none

_TYPE_WORDS = [  # (kind, words), searched in order in the keyword value
    ("bias", ("bias", "zero")),
    ("dark", ("dark",)),
    ("flat", ("flat",)),
    ("light", ("light", "object", "science", "sci", "target")),
]
_EXPOSURE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(ms|msec|s|sec)(?![a-z])", re.IGNORECASE)
_FILTERS = ("U", "B", "V", "R", "I", "Rc", "Ic", "u", "g", "r", "i", "z", "y", "up", "gp",
            "rp", "ip", "zp", "Clear", "C", "CLR", "L", "Lum", "Luminance", "Red", "Green",
            "Blue", "Ha", "Halpha", "Hb", "Hbeta", "OIII", "O3", "SII", "S2", "CBB", "NIR")
_FILTER_NAMES = {n.lower(): n for n in _FILTERS if not (len(n) == 1 and n.islower())}


@dataclass
class RawFrame:
    """One raw frame found on disk and what it was taken to be.

    Attributes
    ----------
    path : Path
    kind : {'bias', 'dark', 'flat', 'light'}
    filter : str or None
    exptime : float
        Seconds.
    shape : tuple
        (ny, nx) after trimming (TRIMSEC).
    binning : tuple
        (x, y) binning.
    gain : float or None
        e-/ADU from the header.
    gain_source : str or None
        E.g. ``'header EGAIN'``.
    read_noise : float or None
        e- from the header.
    guesses : list of str
        Every guess made about this frame, human-readable.
    header : `~astropy.io.fits.Header`
    hdu : int
        Index of the image HDU in the file.
    raw_shape : tuple
        Shape on disk (with overscan).
    product_name : str or None
        File name of the calibrated product (set by ``calibrate_night``).
    """

    path: Path
    kind: str
    filter: str | None
    exptime: float
    shape: tuple
    binning: tuple
    gain: float | None
    gain_source: str | None
    read_noise: float | None
    guesses: list = field(default_factory=list)
    header: fits.Header = field(default=None, repr=False)
    hdu: int = 0
    raw_shape: tuple = None
    read_noise_source: str | None = None
    product_name: str | None = None

    @property
    def name(self):
        """The file name."""
        return self.path.name

    @property
    def group_key(self):
        """Frames with different keys are never combined: (shape, binning)."""
        return (tuple(self.shape), tuple(self.binning))

    def reader(self, overscan=True):
        """A :class:`~glue_zeropoint.calibration.sections.PixelReader` of this frame."""
        return PixelReader(self.path, self.hdu, self.header, overscan=overscan)

    def guess(self, text):
        """Record (and log) a guess about this frame."""
        message = f"{self.name}: {text}"
        self.guesses.append(message)
        log.info(message)


class FrameRefused(InputError):
    """A frame whose header cannot be used safely (refused; the rest of the night goes on)."""


class _ProductFound(Exception):
    """The file is a calibrated product, not a raw frame."""


class FrameList(list):
    """The frames found, plus ``skipped``: ``[{'file': ..., 'reason': ...}]`` (every file left
    out, refused ones included), ``refused`` (frames whose header is unsafe, with the fix) and
    ``products`` (calibrated products met in the raw folder, never calibrated again)."""

    def __init__(self, frames=(), skipped=()):
        super().__init__(frames)
        self.skipped = list(skipped)
        self.refused = []
        self.products = []

    @property
    def guesses(self):
        """All guesses of all frames."""
        return [g for f in self for g in f.guesses]


# -- reading what a frame is ------------------------------------------------------------------
def frame_type_from_header(header):
    """Frame kind from IMAGETYP/FRAMETYP/OBSTYPE, with the keyword used; (None, None) if none."""
    for key in TYPE_KEYS:
        value = header.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        text = value.strip().lower()
        for kind, words in _TYPE_WORDS:
            if any(w in text for w in words):
                return kind, key
    return None, None


def frame_type_from_name(path, root=None):
    """Frame kind from the file name, else its folders (below ``root``); None if silent."""
    parts = [Path(path).name]
    parent = Path(path).parent
    if root is not None:
        try:
            parts += list(reversed(parent.relative_to(root).parts))
        except ValueError:
            pass
    for part in parts:
        text = part.lower()
        for kind, words in _TYPE_WORDS[:3]:
            if any(w in text for w in words):
                return kind
    return None


def exptime_from_name(name):
    """Exposure time (s) written in a file name (``20s``, ``40ms``, ``0.5s``), else None."""
    stem = fits_stem(name)
    for match in _EXPOSURE.finditer(stem):
        value = float(match.group(1))
        return value / 1000.0 if match.group(2).lower().startswith("ms") else value
    return None


def filter_from_name(name):
    """Filter named in a file name (``flat_15s_V003.FIT`` -> 'V'), else None.

    A token (split on ``_``, ``-``, spaces, trailing digits removed) that is a known filter name
    wins, the last one first; else a token right after the exposure token.
    """
    tokens = [t for t in re.split(r"[_\-\s.]+", fits_stem(name)) if t]
    cleaned = [re.sub(r"\d+$", "", t) for t in tokens]
    for token in reversed(cleaned[1:] if len(cleaned) > 1 else cleaned):
        if token in _FILTERS:  # exact case first: 'R' (Johnson) is not 'r' (SDSS)
            return token
        if token.lower() in _FILTER_NAMES:
            return _FILTER_NAMES[token.lower()]
    for i, token in enumerate(tokens[:-1]):
        if _EXPOSURE.fullmatch(token):
            candidate = cleaned[i + 1]
            if candidate.isalpha() and len(candidate) <= 12 and \
                    frame_type_from_name(candidate) is None:
                return candidate
    return None


def _binning(header):
    if "XBINNING" in header or "YBINNING" in header:
        return (int(header.get("XBINNING", 1)), int(header.get("YBINNING", 1)))
    ccdsum = header.get("CCDSUM")
    if isinstance(ccdsum, str) and len(ccdsum.split()) == 2:
        try:
            return tuple(int(v) for v in ccdsum.split())
        except ValueError:
            pass
    return (1, 1)


def is_fits_name(path):
    """Whether a file name has a FITS suffix."""
    return str(path).lower().endswith(FITS_SUFFIXES)


def read_frame(path, root=None):
    """Open one file's header and describe it as a :class:`RawFrame`.

    Raises
    ------
    OSError, ValueError
        If it is not a readable FITS image (the caller skips it).
    InputError
        If it is a usable frame but its exposure time cannot be found.
    """
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
            if is_product(hdul):
                raise _ProductFound(path)
            index = find_image_hdu(hdul)
            if index is None:
                raise ValueError(no_image_reason(hdul))
            n_images = count_image_hdus(hdul)
            hdu = hdul[index]
            header = hdu.header.copy()
            if index > 0:
                _inherit_primary(header, hdul[0].header)
            info = hdul.fileinfo(index)
            if info is not None and not isinstance(hdu, fits.CompImageHDU) and \
                    not getattr(hdul._file, "compression", None):
                nbytes = abs(int(header["BITPIX"])) // 8 * header["NAXIS1"] * header["NAXIS2"]
                if path.stat().st_size < info["datLoc"] + nbytes:
                    raise ValueError("truncated: the data are shorter than the header says")
            if isinstance(hdu, fits.CompImageHDU):
                header["NAXIS1"] = hdu.header.get("ZNAXIS1", hdu.data.shape[1])
                header["NAXIS2"] = hdu.header.get("ZNAXIS2", hdu.data.shape[0])
                header["BITPIX"] = hdu.header.get("ZBITPIX", header.get("BITPIX"))
    frame = RawFrame(path=path, kind="light", filter=None, exptime=0.0, shape=None,
                     binning=_binning(header), gain=None, gain_source=None, read_noise=None,
                     header=header, hdu=index,
                     raw_shape=(int(header["NAXIS2"]), int(header["NAXIS1"])))
    frame.shape = PixelReader(path, index, header).shape
    if n_images > 1:  # a mosaic camera's CCDs, one extension each: said, not assumed
        frame.guess(f"{n_images} image extensions: only the first (HDU {index}) is "
                    "calibrated and measured; split the file into one file per CCD to "
                    "measure the others")
        warnings.warn(frame.guesses[-1], CalibrationWarning, stacklevel=2)

    kind, key = frame_type_from_header(header)
    if kind is None:
        kind = frame_type_from_name(path, root)
        if kind is not None:
            frame.guess(f"frame type {kind!r} from the file name")
        else:
            kind = "light"
            frame.guess("frame type 'light' assumed (no IMAGETYP/FRAMETYP/OBSTYPE and no "
                        "bias/dark/flat in the name)")
    frame.kind = kind

    exptime, _ = header_value(header, EXPTIME_KEYS)
    if exptime is None:
        exptime = exptime_from_name(path.name)
        if exptime is not None:
            frame.guess(f"exposure {exptime:g} s from the file name")
        elif kind == "bias":
            exptime = 0.0
            frame.guess("exposure 0 s assumed for a bias (no EXPTIME or EXPOSURE)")
        else:
            bad = unusable_values(header, EXPTIME_KEYS)
            what = ("no EXPTIME or EXPOSURE keyword" if not bad else
                    ", ".join(f"{k} = {v!r} is not a number" for k, v in bad.items()))
            raise InputError(
                f"{path}: {what} and no exposure time (like '20s') in the file name; add "
                "EXPTIME to the header of a copy or rename the file (e.g. dark_20s001.fits)")
    frame.exptime = float(exptime)
    _check_header(frame, key, root)

    filt = header_text(header, FILTER_KEYS)
    if filt is not None:
        frame.filter = filt
    elif kind in ("flat", "light"):
        frame.filter = filter_from_name(path.name)
        if frame.filter is not None:
            frame.guess(f"filter {frame.filter!r} from the file name")
        else:
            frame.guess("no filter in the header or the file name (filter None)")

    gain, gkey = header_value(header, GAIN_KEYS)
    if gain is not None and gain > 0:
        frame.gain, frame.gain_source = gain, f"header {gkey}"
    rn, rkey = header_value(header, READ_NOISE_KEYS)
    if rn is not None and rn >= 0:
        frame.read_noise, frame.read_noise_source = rn, f"header {rkey}"
    return frame


_STRUCTURE = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "BZERO", "BSCALE", "BLANK",
              "PCOUNT", "GCOUNT", "EXTNAME", "EXTVER", "CHECKSUM", "DATASUM", "COMMENT",
              "HISTORY", "", "INHERIT", "NEXTEND")


def _inherit_primary(header, primary):
    """Keywords of the primary header the image extension lacks (multi-extension files keep
    EXPTIME, IMAGETYP, FILTER... in the primary header and the pixels in extension 1)."""
    for card in primary.cards:
        key = card.keyword
        if key in _STRUCTURE or key.startswith(("NAXIS", "ZNAXIS", "ZTILE", "ZBITPIX")) or \
                key in header:
            continue
        header.append(card, end=True)


def _check_header(frame, kind_key, root):
    """Refuse a frame whose header would calibrate wrongly (before any pixel is read)."""
    name_kind = frame_type_from_name(frame.path, root)
    if kind_key is not None and name_kind is not None and name_kind != frame.kind:
        value = frame.header.get(kind_key)
        shortish = {frame.kind, name_kind} == {"bias", "dark"}
        if shortish and frame.exptime <= SHORT_DARK_MAX:
            frame.guess(f"{kind_key} = {value!r} says {frame.kind} but the file name says "
                        f"{name_kind}; used as a {frame.kind} ({frame.exptime:g} s)")
        else:
            raise FrameRefused(
                f"{frame.name}: {kind_key} = {value!r} says {frame.kind} but the file name "
                f"says {name_kind}; refused, as either may be wrong: fix {kind_key} in a copy "
                "of the file or rename it")
    if frame.kind in ("light", "dark", "flat") and not frame.exptime > 0:
        raise FrameRefused(
            f"{frame.name}: exposure time {frame.exptime:g} s for a {frame.kind} (must be "
            f"> 0); refused: correct EXPTIME in a copy of the file")
    if frame.kind == "bias" and frame.exptime < 0:
        raise FrameRefused(f"{frame.name}: exposure time {frame.exptime:g} s for a bias (must "
                           "be >= 0); refused: correct EXPTIME in a copy of the file")


def _candidate_files(root, exclude):
    exclude = [Path(p).resolve() for p in exclude]
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in
                                     path.relative_to(root).parts):
            continue
        resolved = path.resolve()
        if any(resolved == e or e in resolved.parents for e in exclude):
            continue
        yield path


def _looks_like_fits(path):
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError:
        return False
    return head == b"SIMPLE" or (is_fits_name(path) and path.name.lower().endswith((".gz", ".fz")))


def scan_frames(raw_dir, *, progress=None, exclude=(), keep_products=False):
    """Find every raw frame below ``raw_dir`` and tell what it is.

    Parameters
    ----------
    raw_dir : path
        The night's folder; sub-folders (``Darks/``, ``Twilight Flats/``) are searched too.
    progress : callable, optional
        ``progress(done, total, message)``, see :mod:`glue_zeropoint.progress`.
    exclude : sequence of path, optional
        Folders to leave out (e.g. an output folder inside ``raw_dir``).
    keep_products : bool
        The caller measures calibrated products as they are (``night --no-calibrate``): they
        are listed in ``.products`` without the warning that they were left out, and a folder
        holding only products is not an error.

    Returns
    -------
    FrameList
        A list of :class:`RawFrame` sorted by path, with ``.skipped`` (files that were not
        readable FITS images and why). Very short darks (<= 0.1 s) become biases when a group
        of frames (same shape and binning) has no bias; that is recorded as a guess.

    Raises
    ------
    InputError
        If ``raw_dir`` is not a folder, holds no FITS image, or a frame has no exposure time.
    """
    root = Path(raw_dir)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder; give the folder holding the raw frames")
    files = list(_candidate_files(root, exclude))
    frames = FrameList()
    for i, path in enumerate(files):
        report(progress, i, len(files), f"reading {path.name}")
        rel = path.relative_to(root)
        if path.name == MANIFEST_NAME:  # a folder of products (left out below)
            frames.products.append(str(rel.as_posix()))
            continue
        if not _looks_like_fits(path):
            _skip(frames, rel, "not a FITS file")
            continue
        try:
            frames.append(read_frame(path, root))
        except _ProductFound:
            frames.products.append(str(rel.as_posix()))
        except FrameRefused as err:
            message = str(err)
            warnings.warn(message, CalibrationWarning, stacklevel=2)
            frames.refused.append({"file": str(rel), "reason": message})
            frames.skipped.append({"file": str(rel), "reason": message})
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - any unreadable file is skipped, not fatal
            _skip(frames, rel, f"unreadable FITS ({err})")
    report(progress, len(files), len(files), "frames found")
    if frames.products and not keep_products:
        folders = sorted({str(Path(p).parent) for p in frames.products})
        n = sum(Path(p).name != MANIFEST_NAME for p in frames.products)
        warnings.warn(f"{n} calibrated product(s) of glue-zeropoint found in "
                      f"{', '.join(f or '.' for f in folders[:3])} were left out: products are "
                      "never calibrated again", CalibrationWarning, stacklevel=2)
    if not frames and not (keep_products and frames.products):
        if frames.refused:
            raise InputError(f"{root}: every frame was refused: "
                             + "; ".join(r["reason"] for r in frames.refused[:3]))
        raise InputError(f"{root}: no readable FITS frames in this folder or its sub-folders; "
                         "point to the folder holding the raw night")
    _short_darks_as_biases(frames)
    return frames


def _skip(frames, rel, reason):
    message = f"{rel}: {reason}; skipped"
    warnings.warn(message, CalibrationWarning, stacklevel=3)  # shown once: the CLI prints warnings, not this log
    frames.skipped.append({"file": str(rel), "reason": reason})


def _short_darks_as_biases(frames):
    groups = {}
    for frame in frames:
        groups.setdefault(frame.group_key, []).append(frame)
    for members in groups.values():
        if any(f.kind == "bias" for f in members):
            continue
        for frame in members:
            if frame.kind == "dark" and frame.exptime <= SHORT_DARK_MAX:
                frame.kind = "bias"
                frame.guess(f"{frame.exptime * 1000:g} ms dark used as a bias (no bias frames)")
