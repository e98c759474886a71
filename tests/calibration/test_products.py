import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty

from glue_zeropoint.calibration import read_product, write_product
from glue_zeropoint.exceptions import InputError


def make_ccd():
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    mask = np.zeros((3, 4), bool)
    mask[1, 2] = True
    header = fits.Header({"EXPTIME": 20.0, "FILTER": "V"})
    header.add_history("calibrated")
    return CCDData(data, unit="electron", uncertainty=StdDevUncertainty(data / 10 + 1),
                   mask=mask, meta=header)


def test_product_format(output_dir):
    path = write_product(make_ccd(), output_dir / "M13 é_cal.fits")
    with fits.open(path) as hdul:
        assert hdul[0].name == "PRIMARY" and {h.name for h in hdul[1:]} == {"UNCERT", "MASK"}
        assert hdul[0].data.dtype == np.dtype(">f4") and hdul[0].header["BUNIT"] == "electron"
        assert hdul["UNCERT"].data.dtype == np.dtype(">f4")
        assert hdul["MASK"].data.dtype == np.uint8 and hdul["MASK"].data[1, 2] == 1
        assert hdul[0].header["FILTER"] == "V" and "calibrated" in str(hdul[0].header["HISTORY"])
    back = read_product(path)
    assert back.unit == "electron" and back.mask.dtype == bool and back.mask.sum() == 1
    assert isinstance(back.uncertainty, StdDevUncertainty)
    np.testing.assert_array_equal(back.data, make_ccd().data)


def test_float64_input_is_written_as_float32(tmp_path):
    ccd = make_ccd()
    ccd.data = ccd.data.astype(np.float64)
    path = write_product(ccd, tmp_path / "x.fits")
    assert fits.getdata(path).dtype.itemsize == 4


def test_failed_write_leaves_earlier_file_intact(tmp_path, monkeypatch):
    path = write_product(make_ccd(), tmp_path / "x_cal.fits")
    before = path.read_bytes()

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(CCDData, "write", broken)
    with pytest.raises(OSError, match="disk full"):
        write_product(make_ccd(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x_cal.fits"]  # no temporary left


def test_read_product_of_junk(tmp_path):
    junk = tmp_path / "junk.fits"
    junk.write_text("nothing")
    with pytest.raises(InputError, match="junk.fits: not a calibrated product"):
        read_product(junk)


def test_memory_mapped_product(tmp_path):
    path = write_product(make_ccd(), tmp_path / "x_cal.fits")
    ccd = read_product(path, memmap=True)
    assert not ccd.data.flags.owndata and not ccd.uncertainty.array.flags.owndata
    np.testing.assert_array_equal(ccd.data, make_ccd().data)
    np.testing.assert_array_equal(ccd.uncertainty.array, make_ccd().uncertainty.array)
    assert ccd.unit == "electron" and ccd.mask.dtype == bool and ccd.mask.sum() == 1
    before = path.read_bytes()
    ccd.data[0, 0] = 1  # copy-on-write: the product on disk is never changed
    del ccd
    assert path.read_bytes() == before


def test_writing_never_touches_the_arrays(tmp_path, monkeypatch):
    """astropy byte-swaps writeable arrays in place while writing; ours must stay intact."""
    from astropy.io.fits import file as fits_file

    ccd = make_ccd()
    seen = []
    real = fits_file._File.writearray

    def spy(self, array):
        seen.append((ccd.data.copy(), ccd.uncertainty.array.copy()))
        return real(self, array)

    monkeypatch.setattr(fits_file._File, "writearray", spy)
    write_product(ccd, tmp_path / "x.fits")
    assert seen
    for data, sigma in seen:  # what another thread would have seen during the write
        np.testing.assert_array_equal(data, make_ccd().data)
        np.testing.assert_array_equal(sigma, make_ccd().uncertainty.array)
    assert ccd.data.flags.writeable


@pytest.mark.parametrize("memmap", [False, True])
def test_broken_products_are_input_errors_naming_the_file(tmp_path, memmap):
    def write(name, primary, uncert, mask):
        path = tmp_path / name
        fits.HDUList([fits.PrimaryHDU(primary, header=fits.Header({"BUNIT": "electron"})),
                      fits.ImageHDU(uncert, name="UNCERT"),
                      fits.ImageHDU(mask, name="MASK")]).writeto(path)
        return path

    good = np.zeros((20, 30), np.float32)
    cases = {
        write("mask_cal.fits", good, good, np.zeros((10, 10), np.uint8)):
            r"the MASK extension is \(10, 10\) pixels but the image is \(30, 20\)",
        write("uncert_cal.fits", good, np.zeros((20, 31), np.float32), good.astype(np.uint8)):
            r"the UNCERT extension is \(31, 20\) pixels",
        write("empty_cal.fits", None, good, good.astype(np.uint8)):
            "no 2-D image in the primary HDU",
    }
    for path, message in cases.items():
        with pytest.raises(InputError, match=f"{path.name}: {message}"):
            read_product(path, memmap=memmap)
