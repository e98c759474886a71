"""Raw frames to calibrated images: find and group frames, masters, calibrated lights.

Public surface:

- :func:`scan_frames` -> list of :class:`RawFrame` (what each file is, every guess reported);
- :func:`calibrate_night` -> :class:`Night` (calibrated lights, masters, products, report);
- :func:`write_product` / :func:`read_product`: the calibrated FITS product (docs/architecture.md section 3);
- building blocks: :func:`combine_frames`, :func:`photon_transfer`, :func:`calibrate_light`,
  :func:`make_master_bias`, :func:`make_master_dark`, :func:`make_master_flat`;
- :func:`flag_cosmic_rays`: optional L.A.Cosmic masking of single lights.

Nothing here imports Qt or glue.
"""

from .camera import CameraNoise, photon_transfer, read_noise_from_biases
from .combine import combine_block, combine_frames, median_variance_factor
from .cosmics import flag_cosmic_rays
from .frames import FrameList, RawFrame, scan_frames
from .lights import calibrate_light
from .masters import make_master_bias, make_master_dark, make_master_flat
from .night import Night, calibrate_night
from .products import read_product, write_product
from .sections import PixelReader, parse_section

__all__ = ["scan_frames", "RawFrame", "FrameList", "calibrate_night", "Night",
           "write_product", "read_product", "CameraNoise", "photon_transfer",
           "read_noise_from_biases", "combine_frames", "combine_block",
           "median_variance_factor", "calibrate_light", "make_master_bias", "make_master_dark",
           "make_master_flat", "PixelReader", "parse_section", "flag_cosmic_rays"]
