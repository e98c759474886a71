"""The base of the settings dataclasses (:mod:`glue_zeropoint.zeropoint.settings`,
:class:`glue_zeropoint.astrometry.solve.SolveSettings`): a dict round trip of JSON types and
keyword updates. Below every layer; imports none of them."""

import dataclasses
from dataclasses import fields
from pathlib import PurePath

import numpy as np

from .exceptions import InputError

__all__ = ["Settings"]

#: (settings class name, field) -> the Settings class of a nested group (filled by the
#: modules that define nested settings)
_GROUPS = {}


def _plain(value):
    """A JSON-able form of a setting value (SkyCoord -> [ra, dec] deg, Quantity -> arcsec)."""
    if isinstance(value, Settings):
        return value.to_dict()
    if hasattr(value, "icrs") and hasattr(value.icrs, "ra"):  # SkyCoord
        return [float(value.icrs.ra.deg), float(value.icrs.dec.deg)]
    if hasattr(value, "unit") and hasattr(value, "to_value"):  # Quantity (an angle here)
        return float(value.to_value("arcsec"))
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    return value


class Settings:
    """Base of the settings dataclasses: dict round trip and keyword updates."""

    def to_dict(self):
        """The settings as a dict of JSON types (nested groups as dicts)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d):
        """Settings from :meth:`to_dict` output (missing keys keep their defaults)."""
        d = dict(d or {})
        names = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise InputError(f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(names)}")
        kw = {}
        for name, value in d.items():
            sub = _GROUPS.get((cls.__name__, name))
            if sub is not None and isinstance(value, dict):
                value = sub.from_dict(value)
            elif isinstance(value, list):
                value = tuple(value)
            kw[name] = value
        return cls(**kw)

    @classmethod
    def from_keywords(cls, settings=None, **keywords):
        """``settings`` (default: the defaults) with field keywords applied; a keyword that
        is no field is a TypeError (as an unknown keyword argument would be)."""
        settings = cls() if settings is None else settings
        unknown = sorted(set(keywords) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        return settings.replace(**keywords) if keywords else settings

    def replace(self, **changes):
        """A copy with ``changes`` applied (:func:`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)
