"""What a result depends on, as hashes: raw file contents, settings, software version.

A frame's result is keyed by ``frame_key`` = hash(light's content hash, the content hashes
of its night's calibration frames, the settings hash, the software version): a rerun finds
the result of an unchanged frame and redoes a changed one (new bytes, new masters, other
settings, another version); a result under an old key is never read again.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..io import file_sha256

__all__ = ["Settings", "frame_key", "digest", "file_sha256"]


def digest(obj, n=24):
    """A short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Settings:
    """Everything a user sets that changes a frame's result (not where or how it runs)."""

    catalog: str | None = None
    catalog_sha256: str | None = None  # content of a local catalog file
    offline: bool = False
    site: str | None = None
    gain: float | None = None
    read_noise: float | None = None
    band_map: tuple = field(default_factory=tuple)  # sorted (filter, band) pairs
    calibrate: bool = True
    max_stars: int = 300
    aperture_radius: float | None = None
    cfa: str = "G"
    version: str = __version__

    @classmethod
    def make(cls, *, catalog=None, offline=False, site=None, gain=None, band_map=None,
             calibrate=True, max_stars=300, aperture_radius=None, read_noise=None, cfa="G"):
        sha = None
        if catalog is not None and Path(str(catalog)).is_file():
            sha = file_sha256(catalog)
            catalog = str(Path(catalog).resolve())
        return cls(catalog=None if catalog is None else str(catalog), catalog_sha256=sha,
                   offline=bool(offline), site=site, gain=gain,
                   read_noise=None if read_noise is None else float(read_noise),
                   band_map=tuple(sorted((band_map or {}).items())), calibrate=calibrate,
                   max_stars=int(max_stars),
                   aperture_radius=None if aperture_radius is None else float(aperture_radius),
                   cfa=str(cfa))

    @property
    def hash(self):
        """The settings hash (stored with every result)."""
        d = asdict(self)
        if d["catalog_sha256"]:  # a local catalog is its content, not where it lies
            d["catalog"] = Path(d["catalog"]).name
        for name in ("aperture_radius", "read_noise"):
            if d[name] is None:  # the default: the hash of archives made before it
                del d[name]
        if d["cfa"] == "G":  # the default: the hash of archives made before it
            del d["cfa"]
        return digest(d, 16)

    @property
    def band_dict(self):
        return dict(self.band_map) or None

    @classmethod
    def from_night(cls, catalog, night):
        """The archive's key settings from a catalog spec and a
        :class:`~glue_zeropoint.night.settings.NightSettings`."""
        return cls.make(catalog=catalog, offline=night.offline, site=night.site,
                        gain=night.gain, band_map=night.band_map, calibrate=night.calibrate,
                        max_stars=night.max_stars, aperture_radius=night.aperture_radius,
                        read_noise=night.read_noise, cfa=night.cfa)

    def night(self):
        """The :class:`~glue_zeropoint.night.settings.NightSettings` a frame is measured
        with."""
        from ..night.settings import NightSettings

        return NightSettings(site=self.site, band_map=self.band_dict, calibrate=self.calibrate,
                             gain=self.gain, read_noise=self.read_noise,
                             offline=self.offline, max_stars=self.max_stars,
                             aperture_radius=self.aperture_radius, cfa=self.cfa)


def frame_key(light_sha, calibration_sha, settings_hash, where=(), version=__version__):
    """The key of one frame's result (``where``: its path in the night, its field and
    catalog, so two copies of one file are two frames)."""
    return digest([light_sha, calibration_sha, settings_hash, list(where), version], 32)
