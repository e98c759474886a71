"""attach_wcs on glue-core datasets: world coordinates and links follow the new WCS."""

import numpy as np
import pytest
from astrometry_helpers import make_frame, rms_vs_truth
from astropy.wcs import WCS
from glue.core import Data, DataCollection
from glue.core.link_helpers import LinkSame
from glue.core.roi import RectangularROI

from glue_zeropoint.exceptions import InputError
from glue_zeropoint.glue.wcs_update import META_KEY, attach_wcs, wcs_from_meta


@pytest.fixture(scope="module")
def frame():
    return make_frame(shape=(256, 256), n_stars=60, seed=2, rotation=25.0, sip_coeff=3.0)


def _shifted(wcs, arcmin=5.0):
    w = wcs.deepcopy()
    w.sip = None
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [w.wcs.crval[0], w.wcs.crval[1] + arcmin / 60.0]
    return w


def test_attach_keeps_world_ids_and_links(frame):
    ccd, field, cat = frame
    img = Data(flux=np.asarray(ccd.data), label="image", coords=_shifted(field.wcs))
    stars = Data(ra=np.asarray(cat["ra"]), dec=np.asarray(cat["dec"]), label="catalog")
    dc = DataCollection([img, stars])
    dec_id, ra_id = img.world_component_ids
    dc.add_link(LinkSame(stars.id["ra"], ra_id))
    dc.add_link(LinkSame(stars.id["dec"], dec_id))
    s = field.stars
    k = int(np.argmin(s["mag_V"]))
    ix, iy = int(round(s["x"][k])), int(round(s["y"][k]))
    before = img[ra_id][iy, ix], img[dec_id][iy, ix]
    assert abs(before[1] - s["dec"][k]) > 4.9 / 60

    w = field.wcs.deepcopy()
    w.pixel_shape = (256, 256)
    attach_wcs(img, w)  # the collection is found through the hub
    assert img.world_component_ids == [dec_id, ra_id]  # same ComponentIDs: links survive
    assert img.coords is w
    sky = field.wcs.pixel_to_world(ix, iy)
    assert img[ra_id][iy, ix] == pytest.approx(sky.ra.deg, abs=1e-9)
    assert img[dec_id][iy, ix] == pytest.approx(sky.dec.deg, abs=1e-9)
    # the catalog's ra, seen through the link on the image, follows the new WCS
    assert img[stars.id["ra"]][iy, ix] == pytest.approx(sky.ra.deg, abs=1e-9)
    # a selection drawn on the image (pixel ROI) picks the right catalog star
    roi = RectangularROI(ix - 2, ix + 2, iy - 2, iy + 2)
    from glue.core.subset import RoiSubsetState

    state = RoiSubsetState(img.pixel_component_ids[1], img.pixel_component_ids[0], roi)
    mask = state.to_mask(stars)
    assert mask[k] and mask.sum() <= 2
    # the SIP terms are kept in meta as a header string (sessions drop fits.Header objects)
    back = wcs_from_meta(img)
    assert isinstance(img.meta[META_KEY], str) and back.sip is not None
    assert back.pixel_to_world(10, 20).separation(w.pixel_to_world(10, 20)).arcsec < 1e-6


def test_attach_to_an_image_without_coords(frame):
    ccd, field, _ = frame
    img = Data(flux=np.asarray(ccd.data), label="bare")
    DataCollection([img])
    attach_wcs(img, field.wcs)
    assert len(img.world_component_ids) == 2
    assert img[img.world_component_ids[1]][0, 0] == pytest.approx(
        field.wcs.pixel_to_world(0, 0).ra.deg)


def test_attach_errors(frame):
    ccd, field, _ = frame
    img = Data(flux=np.asarray(ccd.data), label="bare")
    w = field.wcs.deepcopy()
    w.pixel_shape = (512, 512)
    with pytest.raises(InputError, match="512x512 image but the dataset is 256x256"):
        attach_wcs(img, w)
    with pytest.raises(InputError, match="celestial"):
        attach_wcs(img, WCS(naxis=2))
    with pytest.raises(InputError, match="2-D"):
        attach_wcs(Data(x=[1.0, 2.0]), field.wcs)


# glue saves the WCS with to_header() (no SIP, hence the warning); the plugin's session patch
# restores the SIP terms from meta['zp_wcs_header']
@pytest.mark.filterwarnings("ignore:Some non-standard WCS keywords were excluded")
def test_attached_wcs_with_sip_survives_a_session_round_trip(frame):
    from glue.core.state import GlueSerializer, GlueUnSerializer

    from glue_zeropoint import setup
    from glue_zeropoint.glue.loader import ccd_to_data

    setup()  # registers the session patch that restores SIP terms
    ccd, field, _ = frame
    ccd = ccd.copy()
    ccd.wcs = None
    img = ccd_to_data(ccd, "unsolved")
    dc = DataCollection([img])
    w = field.wcs.deepcopy()
    w.pixel_shape = (256, 256)
    attach_wcs(img, w)
    restored = GlueUnSerializer.loads(GlueSerializer(dc).dumps()).object("__main__")[0]
    assert restored.coords.sip is not None
    assert rms_vs_truth(restored.coords, field) < 1e-6
