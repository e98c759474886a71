"""Exceptions and warnings raised by glue-zeropoint.

Every message says what was wrong, in which file (when there is one) and what to do.
The command line turns :class:`InputError` into exit code 2 with a one-line reason; the Glue
layer shows any :class:`ZeropointError` as a non-modal message.

Every warning the package issues is a :class:`GlueZeropointWarning` (an
`~astropy.utils.exceptions.AstropyUserWarning`), one subclass per layer, so a user can filter
them as a group or by layer:

>>> import warnings
>>> from glue_zeropoint.exceptions import CatalogWarning, GlueZeropointWarning
>>> issubclass(CatalogWarning, GlueZeropointWarning)
True
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore", CatalogWarning)  # e.g. "using the cached answer"
...     warnings.warn("VizieR failed; using the cached answer", CatalogWarning)
"""

from astropy.utils.exceptions import AstropyUserWarning


class ZeropointError(Exception):
    """Base class of all errors raised on purpose by glue-zeropoint."""


class InputError(ZeropointError, ValueError):
    """The user's input (files, headers, options) cannot be used as given."""


class CalibrationError(ZeropointError):
    """A calibration step could not be carried out."""


class PhotometryError(ZeropointError):
    """Stars could not be found or measured."""


class CatalogError(ZeropointError):
    """A reference catalog could not be obtained or used."""


class CatalogServiceError(CatalogError):
    """A remote catalog service failed (timeout, HTTP error, malformed answer)."""


class AstrometryError(ZeropointError):
    """No astrometric solution could be found for an image."""


class FitError(ZeropointError):
    """The zero-point fit could not be carried out (e.g. too few usable stars)."""


class Cancelled(ZeropointError):
    """Raised from a progress callback to stop a long step; earlier results stay intact."""


class OutputError(ZeropointError, OSError):
    """A result could not be written (disk full, no permission, ...); nothing half-written is
    left behind. The command line gives exit code 1."""


class FolderBusyError(InputError):
    """Another run is writing into the same output folder (see :class:`~glue_zeropoint.io.OutputLock`)."""


class StaleProductsError(InputError):
    """A folder of calibrated products is incomplete or out of date (see its calibration.json)."""


# --- warnings ------------------------------------------------------------------------------


class GlueZeropointWarning(AstropyUserWarning):
    """Base class of every warning issued by glue-zeropoint (filter this to silence them all)."""


class CalibrationWarning(GlueZeropointWarning):
    """A frame was skipped or refused, or a calibration choice was made for the user."""


class PhotometryWarning(GlueZeropointWarning):
    """A star measurement rests on a fallback (e.g. the measured sky variance, an aperture
    correction from the PSF families' range)."""


class CatalogWarning(GlueZeropointWarning):
    """A catalog answer is partial, cached or from a fallback catalog."""


class AstrometryWarning(GlueZeropointWarning):
    """A WCS is doubtful or an astrometric assumption was made."""


class ZeropointWarning(GlueZeropointWarning):
    """A zero-point measurement is doubtful (many bad pixels, no sky brightness, ...)."""


class InputWarning(GlueZeropointWarning):
    """Part of the user's input could not be used and was left out (a date, positions, a
    header WCS)."""
