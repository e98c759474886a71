"""The archive store: one folder a user opens with pandas/astropy, written so a killed run
leaves nothing a later run would trust.

Layout::

    STORE/
      archive.json                      what this folder is (format, software)
      archive/night=<name>/part-0.parquet   per-frame results of a night (the archive table)
      nights/night=<name>/part-0.parquet    the night's summary (one row)
      work/frames/<name>/<frame key>.pkl    one frame's measurement (row + stars), the unit
                                            of resume; written by the frame's task
      work/masters/<name>/<calibration key>/ master_*.fits + masters.json (written last)
      work/catalogs/<key>.pkl            one catalog answer per field, read by every worker

Every file is written to a temporary file in its folder and renamed into place
(:func:`glue_zeropoint.io.atomic_path`): a result exists whole or not at all. A night's
``part-0.parquet`` records the night's key (its frames' keys and the settings); a rerun
trusts it only when the key is the same.
"""

import json
import os
import pickle
from pathlib import Path

import numpy as np

from ..io import atomic_path, clean_tmp_files

__all__ = ["Store", "read_archive", "read_summaries", "STORE_FORMAT"]

STORE_FORMAT = "glue-zeropoint-archive-1"
MARKER = "archive.json"


def _fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_pickle(path, obj):
    atomic_write_bytes(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def load_pickle(path):
    with open(path, "rb") as fh:
        return pickle.load(fh)


def write_parquet(path, table, metadata=None):
    """Write a pyarrow table atomically (temp file in the folder, fsync, rename)."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if metadata:
        meta = dict(table.schema.metadata or {})
        meta.update({k.encode(): json.dumps(v, default=str).encode()
                     for k, v in metadata.items()})
        table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
        _fsync_path(tmp)


def parquet_metadata(path):
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    out = {}
    for k, v in meta.items():
        k = k.decode()
        if k.startswith("zp_"):
            out[k] = json.loads(v.decode())
    return out


class Store:
    """Paths of an archive store (see the module docstring)."""

    def __init__(self, root):
        self.root = Path(root)

    def create(self):
        from .. import __version__

        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / MARKER
        if not marker.exists():
            atomic_write_bytes(marker, json.dumps(
                {"format": STORE_FORMAT, "software": f"glue-zeropoint {__version__}"},
                indent=1).encode())
        return self

    def is_store(self):
        return (self.root / MARKER).is_file()

    def night_part(self, name):
        return self.root / "archive" / f"night={name}" / "part-0.parquet"

    def summary_part(self, name):
        return self.root / "nights" / f"night={name}" / "part-0.parquet"

    def frames_dir(self, name):
        return self.root / "work" / "frames" / name

    def frame_result(self, name, key):
        return self.frames_dir(name) / f"{key}.pkl"

    def masters_dir(self, name, key):
        return self.root / "work" / "masters" / name / key

    def catalog_path(self, key):
        return self.root / "work" / "catalogs" / f"{key}.pkl"

    def night_key_of(self, name):
        """The key recorded in a night's archive partition (None: none trusted)."""
        p = self.night_part(name)
        if not p.is_file():
            return None
        try:
            return parquet_metadata(p).get("zp_night_key")
        except Exception:  # noqa: BLE001 - an unreadable part is not trusted
            return None

    def clean_tmp(self):
        """Remove temporary files a killed run left (call while holding the store's lock)."""
        removed = []
        for folder, _, _ in os.walk(self.root):
            removed += clean_tmp_files(folder)
        return removed


def _read_dataset(folder, columns=None):
    import pyarrow.dataset as ds

    folder = Path(folder)
    files = sorted(folder.glob("night=*/part-0.parquet"))
    if not files:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    # nights written by other versions may differ in a column or its type (int vs float):
    # one schema for all (the union, types promoted), the night name always text
    schema = pa.unify_schemas([pq.read_schema(f).remove_metadata() for f in files],
                              promote_options="permissive")
    schema = schema.append(pa.field("night", pa.string()))
    dataset = ds.dataset([str(f) for f in files], format="parquet", schema=schema,
                         partitioning=ds.partitioning(pa.schema([("night", pa.string())]),
                                                      flavor="hive"),
                         partition_base_dir=str(folder))
    table = dataset.to_table(columns=columns)
    df = table.to_pandas()
    if "night" in df.columns:
        df["night"] = df["night"].astype(str)
    return df


def read_archive(store, columns=None):
    """The per-frame archive table of a store as a pandas DataFrame (sorted by night, frame);
    an empty DataFrame when no night is done."""
    import pandas as pd

    df = _read_dataset(Path(store) / "archive", columns)
    if df is None:
        return pd.DataFrame()
    keys = [k for k in ("night", "file") if k in df.columns]
    return df.sort_values(keys, kind="stable").reset_index(drop=True) if keys else df


def read_summaries(store):
    """The per-night summaries (one row per night) as a pandas DataFrame."""
    import pandas as pd

    df = _read_dataset(Path(store) / "nights")
    if df is None:
        return pd.DataFrame()
    return df.sort_values("night", kind="stable").reset_index(drop=True)


def to_arrow(columns):
    """A pyarrow table from ``{name: numpy array or list}`` (strings as strings)."""
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        a = np.asarray(values)
        if a.dtype.kind in "US" or a.dtype == object:
            arrays[name] = pa.array([None if v is None else str(v) for v in a.tolist()],
                                    pa.string())
        elif a.dtype.kind == "b":
            arrays[name] = pa.array(a.astype(bool))
        elif a.dtype.kind in "iu":
            arrays[name] = pa.array(a.astype(np.int64))
        else:
            arrays[name] = pa.array(a.astype(np.float64))
    return pa.table(arrays)
