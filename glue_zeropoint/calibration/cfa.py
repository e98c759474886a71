"""Colour (Bayer) mosaics: one colour of a one-shot-colour or DSLR frame as an image of its own.

A colour camera's pixels sit under a 2x2 pattern of filters (``RGGB``, ``BGGR``, ``GRBG``,
``GBRG``). Measured as one grey image, every star is a checkerboard of three colours: its
profile, the detection's shape tests and the sky statistics all mix filters, and its
magnitude is in no photometric band. The practice for photometry with such cameras (the
"TG" band of DSLR photometry: the green channel, close to Johnson V) is to measure one
colour. Here each 2x2 cell becomes one pixel:

- ``G`` (band ``TG``): the sum of the cell's two green pixels (all the green light of the cell, the two
  pixels' noise independent and summed: the CCD equation holds with the read noise times
  sqrt(2)); its light-weighted centre is the cell's centre;
- ``R`` or ``B``: the cell's one red or blue pixel, a quarter of the cell; a star narrower
  than ~2 cells puts a share of its light on it that depends on where it falls, so the
  green channel is the one for undersampled stars (a note says so).

The channel image has half the frame's size; its WCS is the frame's with the reference pixel
moved and the pixel scale (and SIP distortion) rescaled, so sky positions are unchanged (to
1e-9 deg). The pattern comes from the header (``BAYERPAT``, ``COLORTYP``, or a ``FILTER``
that is a pattern, shifted by ``XBAYROFF``/``YBAYROFF``), read against the array as astropy
returns it (row 0 first), and checked against the frame's own sky: the two greens see
the same sky, so a claimed green pair whose sky levels disagree while the other pair's agree
is taken from the other diagonal, with a note (real DSLR frames of the PANOPTES project say
RGGB and are stored rows first-to-last the other way). ``ROWORDER`` is not read: writers
that store rows top-down (N.I.N.A., ASIAIR) give the pattern of the array as stored, and
Siril, turning such a file bottom-up, turns the pattern with it, so the pattern describes the
stored array either way; a file that breaks this is caught by the sky check (for the green
channel; an R or B channel is refused then).

No Qt, no glue.
"""

import logging
import math
import re

import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty

from ..exceptions import InputError

__all__ = ["CFA_PATTERNS", "CFA_CHANNELS", "cfa_pattern", "extract_channel",
           "channel_wcs", "channel_position", "channel_filter", "light_share_scatter"]

log = logging.getLogger(__name__)

CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
#: what a user may ask for: a colour, or "none" (measure the mosaic as one grey image)
CFA_CHANNELS = ("G", "R", "B", "none")
_PATTERN_KEYS = ("BAYERPAT", "COLORTYP", "CFA-PAT")
#: keywords of a mosaic that no longer apply to a channel image: its pattern, the mosaic's
#: pixel sections, and a calibrated product's marks (a channel image written by ``measure``
#: is no product of a calibration run; ``calibrate`` marks its own products after this)
_MOSAIC_KEYS = ("BAYERPAT", "COLORTYP", "CFA-PAT", "XBAYROFF", "YBAYROFF", "DATASEC",
                "CCDSEC", "TRIMSEC", "BIASSEC", "LTV1", "LTV2", "LTM1_1", "LTM1_2", "LTM2_1",
                "LTM2_2", "ZPSOFT", "ZPRUN", "ZPKEY")
#: the pixel's size on the sky or in the focal plane: a channel pixel is two mosaic pixels
#: (XPIXSZ is the binned pixel, MaxIm/N.I.N.A.; PIXSIZE1 the physical one, times XBINNING)
_DOUBLED_KEYS = ("PIXSCALE", "SECPIX", "SECPIX1", "SECPIX2", "PIXSCAL1", "PIXSCAL2", "SCALE",
                 "XPIXSZ", "YPIXSZ", "XBINNING", "YBINNING")


def _text(meta, key):
    try:
        value = meta.get(key)
    except AttributeError:
        return None
    if value is None:
        return None
    return str(value).strip().upper() or None


def _offset(meta, key):
    try:
        return int(round(float(meta.get(key) or 0))) % 2
    except (TypeError, ValueError):
        return 0


def _shift(pattern, xoff, yoff):
    """The pattern as seen from pixel (0, 0) when it starts at (``xoff``, ``yoff``)."""
    rows = [pattern[0:2], pattern[2:4]]
    if xoff:
        rows = [r[::-1] for r in rows]
    if yoff:
        rows = rows[::-1]
    return rows[0] + rows[1]


def cfa_pattern(meta):
    """The frame's colour-filter pattern (one of :data:`CFA_PATTERNS`, as seen from array
    pixel (0, 0)) and the keyword it came from; ``(None, None)`` for a monochrome frame.

    Examples
    --------
    >>> cfa_pattern({"BAYERPAT": "RGGB"})
    ('RGGB', 'BAYERPAT')
    >>> cfa_pattern({"BAYERPAT": "RGGB", "XBAYROFF": 1})
    ('GRBG', 'BAYERPAT')
    >>> cfa_pattern({"FILTER": "V"})
    (None, None)
    >>> cfa_pattern({"FILTER": "TG", "CFAPAT": "RGGB", "CFACHAN": "G"})  # a channel image
    (None, None)
    """
    if meta is None:
        return None, None
    try:
        if meta.get("CFACHAN"):  # one colour of a mosaic already (extract_channel's)
            return None, None
    except AttributeError:
        return None, None
    for key in _PATTERN_KEYS + ("FILTER",):
        value = _text(meta, key)
        if value in CFA_PATTERNS:
            return _shift(value, _offset(meta, "XBAYROFF"), _offset(meta, "YBAYROFF")), key
    return None, None


def channel_filter(meta, channel, *, pattern=None):
    """The FILTER of a colour mosaic's ``channel`` image: ``'TG'`` (``'TR'``, ``'TB'``: the
    names of colour-camera channels in variable-star photometry), after the frame's own
    filter when it names one that is not the pattern (``'L+TG'``: frames behind different
    filters stay different bands); None for a monochrome frame or ``channel`` 'none'.

    Examples
    --------
    >>> channel_filter({"FILTER": "RGGB"}, "g"), channel_filter({"FILTER": "V"}, "G")
    ('TG', None)
    >>> channel_filter({"BAYERPAT": "RGGB", "FILTER": "L"}, "G")
    'L+TG'
    """
    from ..headers import FILTER_KEYS, header_text

    if channel is None or str(channel).lower() == "none" or meta is None:
        return None
    if pattern is None and cfa_pattern(meta)[0] is None:
        return None
    name = "T" + str(channel).upper()
    own = header_text(meta, FILTER_KEYS)
    if own is None or own.upper() in CFA_PATTERNS:
        return name
    return f"{own}+{name}"


def light_share_scatter(sb, pattern, channel, fwhm, *, positions=8, supersample=4):
    """How much the share of a star's light on a channel's pixels varies with where the star
    falls in its 2x2 cell: the rms over positions of that share, relative to its mean.

    A channel's pixels do not tile the sky (the two greens are half of each cell, a red or
    blue pixel a quarter): a star narrower than about two cells puts more or less of its
    light on them depending on its position, a scatter of the stars' fluxes that their
    counting errors do not carry (simulated Gaussian stars of FWHM 1 mosaic pixel: 0.14 mag
    in G against stated errors of 0.009; 1.5 px: 0.013).

    Parameters
    ----------
    sb : callable
        The star's profile in the channel image: surface brightness per channel pixel (unit
        total flux) at radius ``r`` channel pixels (e.g. a measured PSF's
        ``surface_brightness``).
    pattern, channel : str
    fwhm : float
        The profile's FWHM in channel pixels (how far to integrate).
    positions, supersample : int
        Star positions per cell axis; sub-samples per mosaic pixel axis.

    Returns
    -------
    float
        The relative rms (0 for a star much wider than a cell).
    """
    sites = _sites(pattern, channel)
    reach = max(3.0 * 2.0 * float(fwhm), 3.0)  # mosaic pixels
    n = int(math.ceil(reach)) + 2
    offs = (np.arange(supersample) + 0.5) / supersample - 0.5
    pix = np.arange(-n, n + 1)
    # sub-sample coordinates of every mosaic pixel around the origin cell
    gx = (pix[:, None] + offs[None, :]).ravel()
    on = np.zeros((pix.size, pix.size), bool)
    for dy, dx in sites:
        on[np.ix_((pix % 2) == dy, (pix % 2) == dx)] = True
    shares = []
    for u in np.arange(positions) * 2.0 / positions:
        for v in np.arange(positions) * 2.0 / positions:
            r = np.hypot(gx[None, :] - u, gx[:, None] - v) / 2.0  # in channel pixels
            w = np.asarray(sb(r.ravel()), float).reshape(r.shape)
            per_pixel = w.reshape(pix.size, supersample, pix.size, supersample).sum(axis=(1, 3))
            total = per_pixel.sum()
            if total > 0:
                shares.append(per_pixel[on].sum() / total)
    shares = np.asarray(shares)
    if shares.size < 2 or not np.mean(shares) > 0:
        return 0.0
    return float(np.std(shares) / np.mean(shares))


def _sites(pattern, colour):
    """(dy, dx) of the ``colour`` pixels in a 2x2 cell of ``pattern``."""
    return [(k // 2, k % 2) for k in range(4) if pattern[k] == colour]


def channel_position(x, y, pattern, channel):
    """Pixel position in the mosaic of position ``(x, y)`` in a channel image (0-based):
    ``2 x + ox``, ``2 y + oy`` with ``(ox, oy)`` the channel's mean site in its cell."""
    sites = _sites(pattern, channel)
    oy = float(np.mean([s[0] for s in sites]))
    ox = float(np.mean([s[1] for s in sites]))
    return 2.0 * np.asarray(x, float) + ox, 2.0 * np.asarray(y, float) + oy


_WCS_KEY = re.compile(r"^(CRPIX|CRVAL|CDELT|CTYPE|CUNIT|CROTA|CRDER|CSYER|PC\d*_|CD\d*_|PV\d*_|"
                      r"PS\d*_|A_|B_|AP_|BP_|LONPOLE|LATPOLE|WCSAXES|WCSNAME|RADESYS|"
                      r"RADECSYS)")
_SIP_KEY = re.compile(r"^(A|B|AP|BP)_(\d+)_(\d+)$")


def channel_wcs(wcs, ox, oy, shape=None):
    """The WCS of a channel image whose pixel ``(x, y)`` is the mosaic's ``(2 x + ox, 2 y +
    oy)`` (0-based): the reference pixel moved, the scale doubled, SIP terms rescaled
    (``A_p_q`` times ``2**(p + q - 1)``); TPV terms act after the scale and stay. None when
    ``wcs`` is None, or when it has lookup-table distortions (which are not rescaled)."""
    if wcs is None:
        return None
    from astropy.wcs import WCS

    if any(t is not None for t in (wcs.cpdis1, wcs.cpdis2, wcs.det2im1, wcs.det2im2)):
        log.warning("the frame's WCS has lookup-table distortions, which a colour channel "
                    "does not carry over: the channel image has no WCS")
        return None
    hdr = wcs.to_header(relax=True)
    for axis, off in ((1, ox), (2, oy)):
        # mosaic 1-based p = 2 q + off - 1 for channel 1-based q
        hdr[f"CRPIX{axis}"] = (float(hdr[f"CRPIX{axis}"]) - off + 1.0) / 2.0
    if any(k.startswith("CD") and "_" in k for k in hdr):
        for k in list(hdr):
            if re.match(r"^CD\d_\d$", k):
                hdr[k] = 2.0 * float(hdr[k])
    else:
        for axis in (1, 2):
            hdr[f"CDELT{axis}"] = 2.0 * float(hdr.get(f"CDELT{axis}", 1.0))
    for k in list(hdr):
        m = _SIP_KEY.match(k)
        if m:
            p, q = int(m.group(2)), int(m.group(3))
            hdr[k] = float(hdr[k]) * 2.0 ** (p + q - 1)
    out = WCS(hdr)
    if shape is not None:
        out.pixel_shape = (shape[1], shape[0])
    return out


def _sky_levels(data):
    """A 3-sigma-clipped mean and its error at each of the four sites of the cell:
    ``{(dy, dx): (level, error)}`` (a quick sky level per site; every k-th cell of a large
    frame)."""
    step = max(1, int(math.sqrt(data.size / 4 / 250_000)))
    out = {}
    for dy in (0, 1):
        for dx in (0, 1):
            v = np.asarray(data[dy::2 * step, dx::2 * step], float)
            v = v[np.isfinite(v)]
            if v.size < 16:
                return None
            med = float(np.median(v))
            sig = float(np.median(np.abs(v - med))) * 1.4826
            keep = v[np.abs(v - med) <= 3.0 * sig] if sig > 0 else v
            # the clipped mean: not quantised like a median of integer data (whose 1-ADU
            # steps between two equal greens looked like a difference of many errors)
            out[(dy, dx)] = (float(np.mean(keep)), max(float(np.std(keep)), 1e-12)
                             / math.sqrt(keep.size))
    return out


def _checked_pattern(data, pattern, channel, name):
    """``(pattern, note)``: the header's pattern, or, where the frame's own sky says the
    green pixels are the other diagonal of the cell (the two greens see the same sky: the
    pair the pattern calls green differs by more than 5 errors and 5 times the other pair),
    the pattern with its rows in the other order (the usual cause: a frame stored
    bottom-up), with a note. For R or B that is refused: which of the two other pixels is
    red cannot be told from the sky."""
    levels = _sky_levels(data)
    if levels is None:
        return pattern, None
    greens = _sites(pattern, "G")
    others = [s for s in levels if s not in greens]
    (g1, e1), (g2, e2) = levels[greens[0]], levels[greens[1]]
    o1, o2 = levels[others[0]][0], levels[others[1]][0]
    d_green, d_other = abs(g1 - g2), abs(o1 - o2)
    # a sensor's two greens may differ by ~1% (green imbalance), red and blue by tens of
    # per cent: only a claimed pair 5 times further apart than the other is turned
    if not (d_green > 5.0 * math.hypot(e1, e2) and d_green > 5.0 * d_other):
        return pattern, None
    flipped = pattern[2:4] + pattern[0:2]
    said = (f"the pixels the header's pattern {pattern} calls green have sky levels {g1:.5g} "
            f"and {g2:.5g}, the other two {o1:.5g} and {o2:.5g}: the greens are the other "
            "diagonal of the cell")
    if channel != "G":
        raise InputError(f"{name}: {said}, so the pattern (or its row order) is wrong and "
                         f"channel {channel} cannot be told from the other colour; measure "
                         "the G channel, or fix BAYERPAT/YBAYROFF")
    return flipped, (f"{said}; taken as {flipped} (rows in the other order: a frame stored "
                     "bottom-up?)")


def extract_channel(ccd, channel="G", *, pattern=None, name=None, reference=None):
    """One colour of a colour mosaic as an image of its own (module docstring).

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        The mosaic (raw ADU or calibrated electrons), with its header in ``meta``.
    channel : {'G', 'R', 'B'}
    pattern : str, optional
        Default from the header (:func:`cfa_pattern`).
    name : str, optional
        For messages.
    reference : `~astropy.nddata.CCDData`, optional
        A mosaic of the same camera on which the pattern is checked instead (the master
        flat: its two greens equal, its red and blue apart; a flat-fielded light's red and
        blue skies may come out equal, which leaves a wrong pattern unseen).

    Returns
    -------
    `~astropy.nddata.CCDData`
        Half the size (an odd last row or column is dropped); data, uncertainty (quadrature)
        and mask (any constituent masked, or at the header's saturation level) of the
        channel; WCS from :func:`channel_wcs`; ``meta`` the frame's header without the
        mosaic's keywords, with ``CFAPAT``, ``CFACHAN``, ``CFAOFFX``/``CFAOFFY`` (the
        channel's site in the cell), ``FILTER`` the channel's band (:func:`channel_filter`;
        the frame's own also as ``FILTORIG``), ``RDNOISE`` scaled for the G sum, ``SATURATE`` for the sum, and a
        history line.

    Raises
    ------
    InputError
        An unknown channel, no pattern, or a frame smaller than one cell.
    """
    channel = str(channel).upper()
    if channel not in ("G", "R", "B"):
        raise InputError(f"colour channel {channel!r}: give G, R or B (or 'none' to measure "
                         "the mosaic as one image)")
    meta = ccd.meta if ccd.meta is not None else {}
    name = name or str(meta.get("FILENAME", "") or "image")
    if pattern is None:
        pattern, _key = cfa_pattern(meta)
    if pattern not in CFA_PATTERNS:
        raise InputError(f"{name}: no colour-filter pattern (BAYERPAT) to take channel "
                         f"{channel} from")
    data = np.asarray(ccd.data)
    ny, nx = (data.shape[0] // 2) * 2, (data.shape[1] // 2) * 2
    if ny < 2 or nx < 2:
        raise InputError(f"{name}: a {data.shape} frame holds no 2x2 colour cell")
    check = data[:ny, :nx]
    if reference is not None and np.shape(reference.data) == data.shape:
        check = np.asarray(reference.data)[:ny, :nx]
    pattern, doubt = _checked_pattern(check, pattern, channel, name)
    if doubt:  # in the header (CFANOTE); callers report it once, not per frame
        log.info("%s: %s", name, doubt)
    sites = _sites(pattern, channel)
    out_dtype = np.result_type(data.dtype, np.float32)
    value = sum(data[dy:ny:2, dx:nx:2].astype(out_dtype) for dy, dx in sites)
    bad = np.zeros(value.shape, bool)
    if ccd.mask is not None:
        for dy, dx in sites:
            bad |= np.asarray(ccd.mask, bool)[dy:ny:2, dx:nx:2]
    sat = _raw_saturation(ccd, data)
    if sat is not None:
        for dy, dx in sites:
            bad |= data[dy:ny:2, dx:nx:2] >= sat
    uncertainty = None
    if ccd.uncertainty is not None:
        sigma = ccd.uncertainty.represent_as(StdDevUncertainty).array
        var = sum(np.asarray(sigma[dy:ny:2, dx:nx:2], np.float64) ** 2 for dy, dx in sites)
        uncertainty = StdDevUncertainty(np.sqrt(var).astype(np.float32), copy=False)
    oy = float(np.mean([s[0] for s in sites]))
    ox = float(np.mean([s[1] for s in sites]))
    header = _channel_header(meta, pattern, channel, len(sites), ox, oy, sat)
    if doubt:  # a long string (FITS CONTINUE cards)
        header["CFANOTE"] = doubt
        header.add_history("colour pattern: taken from the sky, see CFANOTE")
    wcs = channel_wcs(ccd.wcs, ox, oy, value.shape) if ccd.wcs is not None else None
    return CCDData(value, unit=ccd.unit, uncertainty=uncertainty,
                   mask=bad if (bad.any() or ccd.mask is not None) else None,
                   meta=header, wcs=wcs)


def _raw_saturation(ccd, data):
    """The saturation level of a raw mosaic (ADU): the header's, else the raw ceiling (an
    integer maximum reached by several pixels); None for a calibrated frame (electrons),
    whose mask already holds its saturated pixels."""
    from astropy import units as u

    from ..headers import RAW_SATURATION_KEYS, positive_header_value

    unit = getattr(ccd, "unit", None)
    if unit is not None and u.Unit(unit).is_equivalent(u.electron):
        return None
    sat, _key = positive_header_value(ccd.meta or {}, RAW_SATURATION_KEYS)
    if sat is not None:
        return sat
    finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data.ravel()
    if finite.size == 0:
        return None
    vmax = float(finite.max())
    if vmax < 255 or vmax != math.floor(vmax) or np.count_nonzero(finite == vmax) < 4:
        return None
    return vmax


def _channel_header(meta, pattern, channel, n_sites, ox, oy, sat=None):
    from astropy.io import fits

    from ..headers import FILTER_KEYS, READ_NOISE_KEYS, header_text, header_value

    header = fits.Header()
    # new cards: the frame's own header is never changed (a Card is shared by reference)
    cards = ([(c.keyword, c.value, c.comment) for c in meta.cards] if hasattr(meta, "cards")
             else [(k, v, "") for k, v in dict(meta).items()])
    for key, value, comment in cards:
        if key in _MOSAIC_KEYS or key.startswith("NAXIS") or _WCS_KEY.match(key):
            continue
        if key not in ("HISTORY", "COMMENT", "") and key in header:
            continue
        try:
            header.append(fits.Card(key, value, comment), end=True)
        except (ValueError, TypeError):  # a value FITS cannot hold (dict meta): left out
            continue
    for key in _DOUBLED_KEYS:
        value, _k = header_value(header, (key,))
        if value is not None and value > 0:
            header[key] = (int(2 * value) if key.endswith("BINNING") else 2.0 * value,
                           "of a 2x2 colour cell")
    own = header_text(meta, FILTER_KEYS)
    for key in FILTER_KEYS:
        header.remove(key, ignore_missing=True, remove_all=True)
    if own is not None and own.upper() not in CFA_PATTERNS:
        header["FILTORIG"] = (own, "the frame's own filter")
    header["FILTER"] = (channel_filter(meta, channel, pattern=pattern), "colour channel")
    rn, key = header_value(meta, READ_NOISE_KEYS)
    if rn is not None and n_sites > 1:
        header[key] = (rn * math.sqrt(n_sites), f"e-, of a sum of {n_sites} pixels")
    if sat is not None:  # the cells reaching it are masked; a sum of n pixels may reach n x
        for key in ("SATURATE", "SATLEVEL", "DATAMAX"):
            header.remove(key, ignore_missing=True, remove_all=True)
        header["SATURATE"] = (n_sites * sat, f"{n_sites} x the mosaic's")
    header["CFAPAT"] = (pattern, "mosaic's pattern from pixel 0,0")
    header["CFACHAN"] = (channel, "colour channel of this image")
    header["CFAOFFX"] = (ox, "mosaic x = 2 x + CFAOFFX (0-based)")
    header["CFAOFFY"] = (oy, "mosaic y = 2 y + CFAOFFY (0-based)")
    how = "sum of the two green pixels" if n_sites == 2 else f"the {channel} pixel"
    header.add_history(f"colour channel {channel} of a {pattern} mosaic: each 2x2 cell -> one "
                       f"pixel ({how})")
    return header
