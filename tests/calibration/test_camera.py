import numpy as np
import pytest

from glue_zeropoint.calibration import photon_transfer, read_noise_from_biases


def fake_pairs(gain, read_noise, levels, shape=(300, 300), seed=0):
    rng = np.random.default_rng(seed)
    pattern = 1 + rng.normal(0, 0.02, shape)  # flat-field structure, same in every flat
    bias = 500 + rng.normal(0, 3, shape)  # fixed bias pattern (ADU)
    biases = [bias + rng.normal(0, read_noise, shape) / gain for _ in range(4)]
    flats = [bias + (rng.poisson(level * pattern) + rng.normal(0, read_noise, shape)) / gain
             for level in levels]
    return flats, biases


@pytest.mark.parametrize("levels", [(20000, 20000, 30000, 30000),
                                    (24000, 16000, 21000, 19000)])
def test_photon_transfer_recovers_gain_and_read_noise(levels):
    flats, biases = fake_pairs(1.7, 9.0, levels)
    ptc = photon_transfer(flats, biases)
    assert ptc["n_flats"] == 4 and ptc["n_biases"] == 4
    assert abs(ptc["gain"] - 1.7) < 3 * ptc["gain_err"]
    assert ptc["gain_err"] / ptc["gain"] < 0.01
    assert abs(ptc["read_noise"] - 9.0) < 3 * ptc["read_noise_err"]


def test_stated_gain_error_is_honest():
    # the spread of the measurement over seeds agrees with its stated error
    gains, errs = [], []
    for seed in range(12):
        flats, biases = fake_pairs(1.4, 8.0, (20000, 17000), shape=(120, 120), seed=seed)
        ptc = photon_transfer(flats, biases[:2])
        gains.append(ptc["gain"])
        errs.append(ptc["gain_err"])
    assert 0.6 < np.std(gains, ddof=1) / np.mean(errs) < 1.6
    assert abs(np.mean(gains) - 1.4) < 3 * np.mean(errs) / np.sqrt(12)


def test_read_noise_from_biases():
    _, biases = fake_pairs(2.0, 6.0, ())
    rn, err, n = read_noise_from_biases(biases, 2.0)
    assert n == 4 and abs(rn - 6.0) < 3 * err


def test_saturated_nan_and_hot_pixels_do_not_bias_the_gain():
    flats, biases = fake_pairs(1.5, 7.0, (20000, 20000))
    flats[0][5:10, 5:10] = np.nan
    flats[1][50, 50] += 30000  # a cosmic ray
    ptc = photon_transfer(flats, biases)
    assert abs(ptc["gain"] - 1.5) < 3 * ptc["gain_err"]


def test_too_few_frames():
    flats, biases = fake_pairs(1.5, 7.0, (20000,))
    with pytest.raises(ValueError, match="at least 2 flats and 2 biases"):
        photon_transfer(flats, biases)
    with pytest.raises(ValueError, match="at least 2 biases"):
        read_noise_from_biases(biases[:1], 1.5)
