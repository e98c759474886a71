import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u

from glue_zeropoint.exceptions import InputError
from glue_zeropoint.io import atomic_path, ensure_output_dir, to_jsonable, write_json


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("step failed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary left behind
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_write_json_handles_numpy_quantities_and_nan(output_dir):
    path = write_json(output_dir / "z.json", {
        "zp": np.float32(21.5), "n": np.int64(3), "ok": np.bool_(True), "nan": math.nan,
        "arr": np.arange(3), "q": 2.0 * u.s, "path": Path("a b")})
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {"zp": 21.5, "n": 3, "ok": True, "nan": None, "arr": [0, 1, 2], "q": 2.0,
                    "path": "a b"}
    assert to_jsonable((np.float64(np.inf),)) == [None]


def _read_only_for_everyone(monkeypatch, folder):
    """Make ``folder`` read-only, and have ``os.access`` answer for it as the kernel does for
    a normal user: root (CI) bypasses permission bits, so without this the test could only
    run as a normal user."""
    real_access = os.access
    folder = Path(folder)
    folder.chmod(0o500)

    def access(path, mode, *args, **kwargs):
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_read_only_output_folder_is_a_clear_input_error(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    _read_only_for_everyone(monkeypatch, ro)
    try:
        with pytest.raises(InputError, match="ro: the output folder is not writable; choose "
                                             "another --out"):
            ensure_output_dir(ro)
    finally:
        ro.chmod(0o700)


def test_a_refused_rename_is_an_output_error_and_leaves_the_old_file(tmp_path, monkeypatch):
    """The write itself refused (a folder that turned read-only, an ACL): as root too."""
    import glue_zeropoint.io as zio
    from glue_zeropoint.exceptions import OutputError

    target = tmp_path / "zeropoint.json"
    target.write_text("old")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(zio.os, "replace", refuse)
    with pytest.raises(OutputError, match=r"zeropoint.json: could not be written \(Permission "
                                          r"denied\); the folder cannot be written to"):
        write_json(target, {"zp": 21.5})
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["zeropoint.json"]  # no temporary left


def test_output_folder_under_a_file_is_a_clear_input_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot create the output folder"):
        ensure_output_dir(blocker / "out")


def test_atomic_outputs_get_the_users_normal_file_mode(tmp_path, monkeypatch):
    import glue_zeropoint.io as zio

    monkeypatch.setattr(zio, "_UMASK", 0o022)
    path = write_json(tmp_path / "r.json", {"a": 1})
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_write_errors_name_the_file_and_what_to_do(tmp_path):
    import errno

    from glue_zeropoint.exceptions import OutputError

    target = tmp_path / "x.fits"
    with pytest.raises(OutputError, match=r"x.fits: could not be written .*free some space"):
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_lock_refuses_a_second_writer_and_says_who(tmp_path):
    import socket

    from glue_zeropoint.exceptions import FolderBusyError
    from glue_zeropoint.io import LOCK_NAME, OutputLock, lock_holder

    with OutputLock(tmp_path, "calibrate"):
        assert f"process {os.getpid()}" in lock_holder(tmp_path)
        with pytest.raises(FolderBusyError, match=rf"process {os.getpid()} on host "
                                                  rf"'{socket.gethostname()}'.*calibrate"):
            OutputLock(tmp_path, "measure").acquire()
    assert not (tmp_path / LOCK_NAME).exists() and lock_holder(tmp_path) is None


def test_lock_of_a_dead_process_is_taken_over(tmp_path):
    import socket
    import subprocess
    import sys

    from glue_zeropoint.io import LOCK_NAME, OutputLock, lock_holder

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": int(dead),
                                                  "host": socket.gethostname()}))
    assert lock_holder(tmp_path) is None
    with OutputLock(tmp_path, "calibrate") as lock:
        assert f"process {dead}" in lock.stale


def test_clean_tmp_files_removes_only_leftovers_of_atomic_writes(tmp_path):
    from glue_zeropoint.io import clean_tmp_files

    (tmp_path / ".x_cal.fits.ab12CD_9.tmp").write_bytes(b"")
    (tmp_path / "keep.tmp").write_bytes(b"1")
    (tmp_path / ".hidden").write_bytes(b"1")
    assert clean_tmp_files(tmp_path) == [".x_cal.fits.ab12CD_9.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "keep.tmp"]


def test_ascii_text_for_headers():
    from astropy.io import fits

    from glue_zeropoint.headers import ascii_text

    header = fits.Header()
    for name in ("Dark-ü.fit", "Flat-Hα.fit", "M13 été.fits", "plain.fit"):
        header.add_history(ascii_text(name))  # never raises
    assert ascii_text("Dark-ü.fit") == "Dark-u.fit"
    assert ascii_text("Flat-Hα.fit") == "Flat-H\\u03b1.fit"
    assert ascii_text("plain.fit") == "plain.fit"


def test_write_ecsv_in_chunks_is_astropys_file(tmp_path):
    """The chunked ECSV writer (the night's 240,000 detections took ~600 MB through
    astropy's writer at once, and ~8 s) writes the very bytes astropy writes, header,
    quoting, masks and number formats included; so does its path through astropy's writer
    (a multidimensional column)."""
    import numpy as np
    from astropy.table import MaskedColumn, Table

    from glue_zeropoint.io import write_ecsv

    rng = np.random.default_rng(1)
    n = 5003
    t = Table({"frame": rng.integers(0, 9, n), "band": rng.choice(["V", "B", "R I"], n),
               "x": rng.normal(size=n),
               "m": np.where(rng.random(n) < 0.1, np.nan, rng.normal(15, 2, n)),
               "cat": rng.choice(["", "UCAC4 123-4", 'a"b', "#x"], n),
               "ok": rng.random(n) < 0.5, "f32": rng.normal(size=n).astype(np.float32),
               # every float64 bit pattern's repr (NaNs, infinities, subnormals, -0.0)
               "bits": rng.integers(0, 2 ** 63, n, dtype=np.int64).view(np.float64) *
               rng.choice([-1.0, 1.0], n),
               "big": 10.0 ** rng.uniform(-30, 30, n), "u8": rng.integers(0, 255, n, np.uint8),
               "pad": rng.choice([" lead", "trail\t", "  ", "é ü"], n)})
    t["e"] = MaskedColumn(rng.normal(size=n), mask=rng.random(n) < 0.2)
    t["s"] = MaskedColumn(rng.choice(["a", "b c", ""], n), mask=rng.random(n) < 0.2)
    t["x"].unit = "pix"
    t["m"].description = "instrumental magnitude"
    t.meta = {"provenance": {"a": 1}, "notes": ["x y"]}
    t.write(tmp_path / "astropy.ecsv", format="ascii.ecsv")
    write_ecsv(t, tmp_path / "chunked.ecsv", chunk_rows=1000)
    assert (tmp_path / "chunked.ecsv").read_bytes() == (tmp_path / "astropy.ecsv").read_bytes()
    back = Table.read(tmp_path / "chunked.ecsv", format="ascii.ecsv")
    assert len(back) == n and back.meta["notes"] == ["x y"]
    assert not list(tmp_path.glob(".*.tmp"))
    t["xy"] = np.stack([t["x"], t["x"]], axis=1)  # not one-dimensional: astropy's rows
    t.write(tmp_path / "astropy2.ecsv", format="ascii.ecsv")
    write_ecsv(t, tmp_path / "chunked2.ecsv", chunk_rows=1000)
    assert (tmp_path / "chunked2.ecsv").read_bytes() == \
        (tmp_path / "astropy2.ecsv").read_bytes()


@pytest.mark.parametrize("n", [0, 3])
def test_write_ecsv_small_tables_and_what_goes_through_astropy(tmp_path, n):
    """Tables no longer than a chunk (and empty ones) take the same writer; a lone carriage
    return in a string (astropy quotes it) and mixin columns (Time) go through astropy's; a
    line break in a string takes the csv module's quoting."""
    import numpy as np
    from astropy.table import Table
    from astropy.time import Time

    from glue_zeropoint.io import write_ecsv

    cases = {"plain": Table({"a": np.arange(n, dtype=float) / 3, "s": ["x y", "", "z"][:n]}),
             "cr": Table({"s": ["a\rb", "x", "c\r\nd"][:n], "i": np.arange(n)}),
             "newline": Table({"s": ["a\nb", "x y", 'q"'][:n], "i": np.arange(n)}),
             "time": Table({"t": Time(60000.0 + np.arange(n), format="mjd"),
                            "i": np.arange(n)})}
    for name, t in cases.items():
        t.write(tmp_path / f"{name}-astropy.ecsv", format="ascii.ecsv")
        write_ecsv(t, tmp_path / f"{name}.ecsv", chunk_rows=2)
        assert (tmp_path / f"{name}.ecsv").read_bytes() == \
            (tmp_path / f"{name}-astropy.ecsv").read_bytes(), name
        assert len(Table.read(tmp_path / f"{name}.ecsv", format="ascii.ecsv")) == n


def test_write_ecsv_big_endian_columns_as_read_from_fits(tmp_path):
    """Columns in the byte order FITS stores (big-endian, as a catalog read from a FITS
    table keeps them) are written as astropy writes them, not refused by Arrow."""
    from astropy.table import Table

    from glue_zeropoint.io import write_ecsv

    rng = np.random.default_rng(2)
    n = 50
    t = Table({"id": rng.integers(0, 10 ** 12, n).astype(">i8"),
               "i4": rng.integers(-5, 5, n).astype(">i4"),
               "ra": rng.uniform(0, 360, n).astype(">f8"),
               "m": rng.normal(15, 2, n).astype(">f4")})
    # (no text column: FITS text comes back as bytes, which go through astropy's writer)
    t.write(tmp_path / "fits.fits")
    back = Table.read(tmp_path / "fits.fits")
    assert not back["id"].dtype.isnative  # the case at hand
    back.write(tmp_path / "astropy.ecsv", format="ascii.ecsv")
    write_ecsv(back, tmp_path / "ours.ecsv")
    assert (tmp_path / "ours.ecsv").read_bytes() == (tmp_path / "astropy.ecsv").read_bytes()


def test_write_ecsv_does_not_import_pandas(tmp_path):
    """Arrow's ``pa.array``/``pa.scalar`` import pandas to look for its types (0.27 s of a
    night's files); the ECSV writer builds its Arrow arrays from buffers and never does,
    with every kind of column (float with Python-formatted values, int, bool, text, masked)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from astropy.table import Table, MaskedColumn\n"
        "from glue_zeropoint.io import write_ecsv\n"
        "t = Table({'a': np.r_[np.arange(3000.0) + 0.5, 3e12], 'b': np.arange(3001),\n"
        "           'c': np.arange(3001) % 2 == 0, 'd': np.where(np.arange(3001) % 3, 'x y', 'z'),\n"
        "           'e': MaskedColumn(np.ones(3001), mask=np.arange(3001) % 5 == 0)})\n"
        f"write_ecsv(t, {str(tmp_path / 't.ecsv')!r})\n"
        "print('pandas' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    from astropy.table import Table

    t = Table.read(tmp_path / "t.ecsv")
    assert t["a"][-1] == 3e12 and t["b"][-1] == 3000 and t["c"][0] and not t["c"][1]
    assert t["d"][0] == "z" and t["d"][1] == "x y" and t["e"].mask[0] and not t["e"].mask[1]
