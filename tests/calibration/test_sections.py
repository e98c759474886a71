from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from glue_zeropoint.calibration import PixelReader, parse_section
from glue_zeropoint.exceptions import InputError
from glue_zeropoint.simulate import Camera, simulate_night

SAAO = Path(__file__).parents[1] / "data" / "raw" / "saao1m_raw_a8280271.fits"


def test_parse_section_with_spaces_is_one_based_inclusive():
    rows, cols = parse_section("[  17: 528,   1: 520]", (520, 536))
    assert (rows, cols) == (slice(0, 520), slice(16, 528))


@pytest.mark.parametrize("text", ["17:528,1:520", "[0:10,1:5]", "[1:600,1:5]", "[9:3,1:5]"])
def test_parse_section_rejects_bad_sections(text):
    with pytest.raises(ValueError, match="section|fit"):
        parse_section(text, (520, 536), name="x.fits: TRIMSEC")


def test_saao_overscan_and_trim():
    reader = PixelReader(SAAO)
    assert reader.raw_shape == (520, 536)
    assert reader.shape == (520, 512)
    raw = fits.getdata(SAAO).astype(float)
    # robust level of the BIASSEC columns 4-13 (1-based)
    assert reader.overscan_level == pytest.approx(np.median(raw[:, 3:13]), abs=1.0)
    data, saturated = reader.rows()
    assert data.dtype == np.float32 and data.shape == (520, 512)
    np.testing.assert_allclose(data, raw[:, 16:528] - reader.overscan_level, atol=1e-3)
    assert not saturated.any()
    assert reader.saturation == 65535.0  # uint16 stored as int16 + BZERO 32768
    # a block of rows is the same as the slice of the whole
    block, _ = reader.rows(100, 140)
    np.testing.assert_array_equal(block, data[100:140])


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_reader_leaves_the_file_alone_and_notices_truncation(tmp_path):
    path = tmp_path / "copy.fits"
    path.write_bytes(SAAO.read_bytes())
    reader = PixelReader(path)
    data, _ = reader.rows(0, 520)
    data[:] = 0  # a buffer of ours, not a view of the file
    assert path.read_bytes() == SAAO.read_bytes()
    path.write_bytes(SAAO.read_bytes()[:100000])  # cut after the scan
    with pytest.raises(OSError, match="ends early"):
        PixelReader(path).rows(0, 520)


def test_overscan_removes_frame_to_frame_bias_drift(tmp_path):
    truth = simulate_night(tmp_path / "raw", style="iraf", shape=(64, 64), n_bias=2, n_dark=0,
                           dark_exptimes=(), n_flat=0, lights=(("V", 10.0, 1),),
                           cosmic_rays=0, field_kwargs={"n_stars": 3},
                           camera=Camera(overscan=16, bias_drift=30.0))
    for frame in truth.of_kind("bias"):
        reader = PixelReader(frame.path)
        assert reader.shape == (64, 64)
        data, _ = reader.rows()
        # the overscan level followed this frame's drift ...
        assert reader.overscan_level == pytest.approx(
            truth.camera.bias_level + frame.bias_offset, abs=1.0)
        # ... and what is left is the fixed bias pattern around 0
        assert np.median(data) == pytest.approx(np.median(truth.maps.bias) -
                                                truth.camera.bias_level, abs=1.5)


def test_bad_trimsec_names_the_file(tmp_path):
    path = tmp_path / "bad trim.fits"
    header = fits.Header({"TRIMSEC": "[1:500,1:10]", "EXPTIME": 1.0})
    fits.PrimaryHDU(np.zeros((10, 20), np.uint16), header=header).writeto(path)
    with pytest.raises(InputError, match="bad trim.fits: TRIMSEC"):
        PixelReader(path)


def test_saturation_level_from_the_header_chain(tmp_path):
    data = np.zeros((10, 12), np.uint16)
    cases = [({"SATURATE": 50000}, 50000.0), ({"SATURATE": 0, "SATLEVEL": 60000}, 60000.0),
             ({"SATLEVEL": "61000"}, 61000.0), ({"DATAMAX": 1234}, None)]
    for i, (cards, expected) in enumerate(cases):
        path = tmp_path / f"sat{i}.fits"
        fits.PrimaryHDU(data, header=fits.Header(cards)).writeto(path)
        level = PixelReader(path).saturation
        if expected is None:  # DATAMAX is not a saturation level: the 16-bit limit is used
            assert level is not None and level >= 65535 - 1
        else:
            assert level == expected, (cards, level)
