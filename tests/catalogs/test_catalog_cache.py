"""CatalogCache: keys, round trip, age, LRU size bound, clear, damaged entries."""

import os
import time

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from glue_zeropoint.catalogs import CatalogCache, cache_key, normalize_catalog


@pytest.fixture
def table(field):
    cat = normalize_catalog(field.apass(), spec="vizier:II/336/apass9")
    cat.meta["query"] = {"ra": 150.0, "dec": 20.0, "radius": 0.1, "catalog": "II/336/apass9"}
    return cat


def test_key_depends_on_every_part(center):
    base = cache_key("vizier", "II/336/apass9", center, 10 * u.arcmin, ["*"], 100)
    assert base == cache_key("vizier", "II/336/apass9", SkyCoord(150.0000000001, 20.0,
                                                                  unit="deg"),
                             (1 / 6) * u.deg, ["*"], 100)
    others = [
        cache_key("simbad", "II/336/apass9", center, 10 * u.arcmin, ["*"], 100),
        cache_key("vizier", "I/322A", center, 10 * u.arcmin, ["*"], 100),
        cache_key("vizier", "II/336/apass9", SkyCoord(150.01, 20, unit="deg"), 10 * u.arcmin,
                  ["*"], 100),
        cache_key("vizier", "II/336/apass9", center, 11 * u.arcmin, ["*"], 100),
        cache_key("vizier", "II/336/apass9", center, 10 * u.arcmin, ["*", "Vmag"], 100),
        cache_key("vizier", "II/336/apass9", center, 10 * u.arcmin, ["*"], 200),
    ]
    assert len({base, *others}) == 7


def test_round_trip_keeps_table_meta_and_age(tmp_path, table):
    cache = CatalogCache(tmp_path / "c")
    assert cache.get("abc") is None
    cache.put("abc", table)
    back, age = cache.get("abc")
    assert 0 <= age < 60
    assert back.colnames == table.colnames
    np.testing.assert_array_equal(back["mag_V"], table["mag_V"])
    assert list(back["id"]) == list(table["id"])
    assert back.meta["catalog"] == "vizier:II/336/apass9"
    assert back.meta["query"]["radius"] == 0.1
    assert "abc" in cache and len(cache) == 1
    assert not list((tmp_path / "c").glob(".*.tmp"))


def test_age_comes_from_retrieved(tmp_path, table):
    cache = CatalogCache(tmp_path)
    table.meta["retrieved"] = "2020-01-01T00:00:00Z"
    cache.put("old", table)
    _, age = cache.get("old")
    assert age > 5 * 365 * 86400


def test_size_bound_evicts_least_recently_used(tmp_path, table):
    probe = CatalogCache(tmp_path / "probe")
    size = probe.put("x", table).stat().st_size
    cache = CatalogCache(tmp_path / "lru", max_bytes=int(2.5 * size))
    for i, key in enumerate(["a", "b"]):
        path = cache.put(key, table)
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))
    cache.get("a")  # a is now the most recently used
    cache.put("c", table)
    assert "a" in cache and "c" in cache and "b" not in cache
    assert cache.size_bytes() <= cache.max_bytes


def test_clear(tmp_path, table):
    cache = CatalogCache(tmp_path)
    cache.put("a", table)
    cache.put("b", table)
    assert cache.clear() == 2
    assert len(cache) == 0 and cache.size_bytes() == 0


def test_damaged_entry_is_removed_with_a_warning(tmp_path):
    cache = CatalogCache(tmp_path)
    cache.path("bad").write_text("# %ECSV 1.0\n# ---\n# garbage: [\n")
    with pytest.warns(UserWarning, match="unreadable"):
        assert cache.get("bad") is None
    assert "bad" not in cache


def test_default_directory_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GLUE_ZEROPOINT_CACHE_DIR", str(tmp_path / "env-cache"))
    assert CatalogCache().directory == tmp_path / "env-cache"


def test_invalid_size_bound():
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        CatalogCache("x", max_bytes=0)
