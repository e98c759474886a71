"""Helpers of the calibration tests (imported by name: pytest puts this folder on sys.path)."""

import hashlib

import numpy as np
from scipy import ndimage

SHAPE = (256, 256)


def night_kwargs(style):
    # 8 flats: 4 photon-transfer pairs, so the 'thin' gain is measured to ~0.3%
    return dict(style=style, shape=SHAPE, seed=11, n_bias=8, n_dark=5, n_flat=8,
                lights=(("V", 20.0, 2),), field_kwargs={"n_stars": 120})


def sky_pixels(ccd, truth, frame, margin=0.5):
    """Unmasked pixels of pure sky (no star light above ``margin`` e-, away from cosmic rays)."""
    expected = truth.expected_electrons(frame)
    sky = np.median(expected)
    near_cr = ndimage.binary_dilation(frame.cosmic_rays, iterations=2)
    return (expected - sky < margin) & ~ccd.mask & ~near_cr, expected


def checksums(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
