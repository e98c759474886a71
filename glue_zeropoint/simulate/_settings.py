"""The simulator's own settings base: a dict round trip of plain types and keyword updates.

Deliberately not shared with the measurement (``glue_zeropoint._settings``): the simulator
imports nothing from outside ``simulate/`` (tests/simulate checks it), so that it cannot agree
with the measurement by construction.
"""

import dataclasses
from dataclasses import fields

import numpy as np

__all__ = ["SimSettings"]


def _plain(value):
    if isinstance(value, SimSettings):
        return value.to_dict()
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "to_dict"):  # e.g. a PSF family
        return value.to_dict()
    return value


class SimSettings:
    """Base of the simulator's settings dataclasses."""

    def to_dict(self):
        """The settings as a dict of plain types."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d):
        """Settings from :meth:`to_dict` output (lists become tuples; unknown keys: a
        ValueError naming them)."""
        d = dict(d or {})
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @classmethod
    def from_keywords(cls, settings=None, **keywords):
        """``settings`` (default: the defaults) with field keywords applied; an unknown
        keyword is a TypeError."""
        settings = cls() if settings is None else settings
        unknown = sorted(set(keywords) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        return dataclasses.replace(settings, **keywords) if keywords else settings
