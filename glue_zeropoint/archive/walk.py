"""Find the night folders below the folders a user gives."""

import os
from pathlib import Path

from ..calibration.frames import is_fits_name
from ..exceptions import InputError

__all__ = ["find_nights"]


def _has_fits_here(folder):
    try:
        return any(e.is_file() and is_fits_name(e.name) for e in os.scandir(folder))
    except OSError:
        return False


def _has_fits_below(folder):
    for _, _, files in os.walk(folder):
        if any(is_fits_name(f) for f in files):
            return True
    return False


def find_nights(dirs, exclude=()):
    """``[(name, path)]`` of the night folders in ``dirs``, sorted by name.

    A folder holding FITS files itself is one night (its sub-folders, e.g. ``Darks/``, are
    part of it); otherwise each of its immediate sub-folders holding FITS files anywhere
    below is a night. A night's name is its folder name; two nights of one name get their
    parent folder's name in front.

    Raises
    ------
    InputError
        A folder that does not exist, no night found, or two nights of one name.
    """
    excluded = {Path(e).resolve() for e in exclude}
    found = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise InputError(f"{d}: no such folder; give folders of raw nights (or one "
                             "folder holding a night per sub-folder)")
        if d.resolve() in excluded:
            continue
        if _has_fits_here(d):
            found.append(d)
            continue
        for sub in sorted(p for p in d.iterdir() if p.is_dir()):
            if sub.resolve() in excluded or sub.name.startswith("."):
                continue
            if _has_fits_below(sub):
                found.append(sub)
    if not found:
        raise InputError(f"{', '.join(str(d) for d in dirs)}: no night folders (folders "
                         "holding FITS frames) found; give the folder of a night or a folder "
                         "of nights")
    names = {}
    for p in found:
        names.setdefault(p.name, []).append(p)
    out = []
    for name, paths in names.items():
        if len(paths) == 1:
            out.append((_clean(name), paths[0]))
        else:
            for p in paths:
                out.append((_clean(f"{p.parent.name}_{p.name}"), p))
    seen = {}
    for name, p in out:
        if name in seen and seen[name].resolve() != p.resolve():
            raise InputError(f"{seen[name]} and {p}: two nights named {name!r}; rename one "
                             "folder (the night's name keys its results in the archive)")
        seen[name] = p
    return sorted({n: p for n, p in out}.items())


def _clean(name):
    """A night name usable as a Hive partition value (no '/', '=', leading dot)."""
    s = "".join(c if (c.isalnum() or c in "-_.+") else "_" for c in name)
    return s.lstrip(".") or "night"
