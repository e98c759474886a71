"""State and logic of the zero-point viewer (glue-core only, no Qt).

:class:`ZeroPointViewerState` holds the user's choices as echo callback properties (which glue
saves in sessions) and the logic that turns them into a zero point:

1. crossmatch the stars dataset with the catalog dataset (cached until either changes);
2. build the exclusion mask: the user-excluded star ids, plus the chosen subset of the stars
   (``subset.subset_state.to_mask(stars)``, so a selection brushed in any linked view -- a
   scatter plot, a table, the image -- selects stars through glue's links), used as "exclude
   these" or "use only these" according to ``selection_mode``;
3. fit the zero point (:func:`glue_zeropoint.zeropoint.fit_zeropoint`) and the sky surface
   brightness (measured once per image, then shifted with the zero point);
4. publish the :class:`~glue_zeropoint.zeropoint.ZeroPoint` in ``result``.

Steps re-run on state changes and on hub messages: subset create/update/delete (only a refit,
the crossmatch is reused), numerical changes of the stars, catalog or image (new crossmatch).
Errors never propagate out of a callback: ``status`` carries the message and ``result`` is
``None`` (the Qt viewer shows it non-modally).

Sessions: every choice is a callback property saved by glue's ``State.__gluestate__``;
``excluded_ids`` is a list of ints; ``result`` is saved as ``ZeroPoint.to_dict()`` and, on
restore, the fit is re-run from the restored data and compared with it (see
:mod:`glue_zeropoint.glue.session`). Data-valued choices are applied once the viewer hands the
state its data collection (``state.data_collection = dc``), in dependency order.
"""

import json
import logging
import math
import weakref

import numpy as np
from echo import CallbackProperty, ListCallbackProperty, SelectionCallbackProperty, delay_callback
from glue.core.data_combo_helper import ManualDataComboHelper
from glue.core.exceptions import IncompatibleAttribute
from glue.core.hub import HubListener
from glue.core.message import (
    ComponentsChangedMessage,
    DataAddComponentMessage,
    DataCollectionAddMessage,
    DataCollectionDeleteMessage,
    DataUpdateMessage,
    NumericalDataChangedMessage,
    SubsetCreateMessage,
    SubsetDeleteMessage,
    SubsetUpdateMessage,
)
from glue.viewers.common.state import ViewerState

from ..catalogs.normalize import BAND_ORDER
from ..exceptions import InputError, ZeropointError

__all__ = ["ZeroPointViewerState", "SELECTION_MODES", "SELECTION_MODE_LABELS",
           "is_image_data", "is_stars_data", "is_catalog_data", "catalog_bands_of",
           "color_choices", "data_to_table", "register"]

log = logging.getLogger(__name__)

SELECTION_MODES = ("all", "exclude", "only")
SELECTION_MODE_LABELS = {
    "all": "Use all matched stars",
    "exclude": "Exclude the chosen subset",
    "only": "Use only the chosen subset",
}
#: properties that are data (or depend on data choices), applied in this order
_DATA_ORDER = ("image", "stars", "catalog", "band", "color", "subset")
#: callback properties that are not saved as they are (result is saved as a dict)
_TRANSIENT = ("result", "status", "revision")


# ---------------------------------------------------------------------------------------------
# what kind of dataset is this?

def _component_labels(data):
    return {cid.label for cid in data.main_components}


def is_image_data(data):
    """A 2-D image dataset (the loader's ``flux`` image, or any 2-D dataset)."""
    return getattr(data, "ndim", 0) == 2 and "flux" in _component_labels(data)


def is_stars_data(data):
    """A stars table (``star_id``, ``mag_inst``...), as made by :mod:`glue_zeropoint.glue.stars`."""
    kind = data.meta.get("zp_kind")
    if kind is not None:
        return kind == "stars"
    labels = _component_labels(data)
    return getattr(data, "ndim", 0) == 1 and {"star_id", "mag_inst", "ra", "dec"} <= labels


def catalog_bands_of(data):
    """The bands of a normalised catalog dataset (its ``mag_<band>`` components)."""
    if data is None:
        return []
    bands = [label[4:] for label in sorted(_component_labels(data)) if label.startswith("mag_")]
    order = {b: i for i, b in enumerate(BAND_ORDER)}
    return sorted(bands, key=lambda b: (order.get(b, len(order)), b))


def is_catalog_data(data):
    """A normalised catalog table: ``ra``, ``dec`` and at least one ``mag_<band>``."""
    kind = data.meta.get("zp_kind")
    if kind is not None:
        return kind == "catalog"
    labels = _component_labels(data)
    return (getattr(data, "ndim", 0) == 1 and {"ra", "dec"} <= labels
            and not is_stars_data(data) and bool(catalog_bands_of(data)))


def color_choices(bands):
    """Colours ``'X-Y'`` (X bluer than Y) that a set of catalog bands allows, common first."""
    order = {b: i for i, b in enumerate(BAND_ORDER)}
    bands = [b for b in bands if b in order]
    pairs = [(a, b) for a in bands for b in bands if order[a] < order[b]]
    # adjacent bands first (B-V, V-R, g-r...), then wider baselines
    pairs.sort(key=lambda p: (order[p[1]] - order[p[0]], order[p[0]]))
    return [f"{a}-{b}" for a, b in pairs]


def data_to_table(data):
    """An astropy Table of a 1-D glue dataset's main components (label -> column)."""
    from astropy.table import Table

    table = Table()
    for cid in data.main_components:
        table[cid.label] = np.asarray(data[cid])
    return table


# ---------------------------------------------------------------------------------------------
# the science layers

def _crossmatch(sources, catalog, radius_arcsec, obstime, aperture):
    """The crossmatch with what the fit reads from the meta (as in the headless pipeline)."""
    from astropy import units as u

    from ..catalogs.crossmatch import add_fit_meta, crossmatch

    matches = crossmatch(sources, catalog, radius=radius_arcsec * u.arcsec, obstime=obstime)
    return add_fit_meta(matches, catalog, aperture=aperture)


class _Listener(HubListener):
    """Hub subscriber on behalf of a state (weak reference: the hub must not keep it alive)."""

    def __init__(self, state):
        self._state = weakref.ref(state)

    def __call__(self, name):
        def handler(message):
            state = self._state()
            if state is not None:
                getattr(state, name)(message)
        return handler


class ZeroPointViewerState(ViewerState):
    """State of the zero-point viewer: which data, which band and colour, which stars.

    Parameters
    ----------
    data_collection : `~glue.core.data_collection.DataCollection`, optional
        Normally set by the viewer (``Viewer.__init__`` does ``state.data_collection = dc``);
        data-valued keyword arguments wait until it is set.
    **kwargs
        Initial values of the callback properties.

    Examples
    --------
    >>> state = ZeroPointViewerState(data_collection=dc, image=dc['night V'])  # doctest: +SKIP
    >>> state.result.zp, state.result.zp_err                                   # doctest: +SKIP
    """

    image = SelectionCallbackProperty(docstring="The image dataset (exposure time, sky, WCS)")
    stars = SelectionCallbackProperty(docstring="The stars dataset measured on the image "
                                                "(``Stars: <image label>``)")
    catalog = SelectionCallbackProperty(docstring="The reference catalog dataset (normalised "
                                                  "columns ``mag_<band>``, ``err_<band>``)")
    band = SelectionCallbackProperty(docstring="The catalog band the image is calibrated to")
    color = SelectionCallbackProperty(docstring="The colour of the colour term, e.g. ``'B-V'``, "
                                                "or ``None``")
    fit_color_term = CallbackProperty(False, docstring="Whether to fit a colour term (needs "
                                                       "``color``)")
    selection_mode = SelectionCallbackProperty(
        default_index=0, docstring="How the chosen subset is used: ``'all'`` (ignore it), "
                                   "``'exclude'`` (exclude its stars) or ``'only'`` (use only "
                                   "its stars)")
    subset = SelectionCallbackProperty(docstring="The subset group whose stars are excluded or "
                                                 "kept (see ``selection_mode``), or ``None``")
    excluded_ids = ListCallbackProperty(docstring="``star_id`` values the user excluded by hand "
                                                  "(plain ints, saved with the session)")
    clip_sigma = CallbackProperty(3.0, docstring="Sigma of the iterative outlier clipping")
    match_radius = CallbackProperty(2.0, docstring="Crossmatch radius in arcsec")

    status = CallbackProperty("", docstring="A one-line message: what is missing or what "
                                            "went wrong (empty when the fit is fine)")
    revision = CallbackProperty(0, docstring="Incremented after every recomputation (the "
                                             "widgets redraw on it)")

    def __init__(self, data_collection=None, **kwargs):
        super().__init__()
        self._dc = None
        self._listener = None
        self._pending = {}
        self._matches = None          # cached crossmatch (astropy Table) or None
        self._matches_key = None
        self._catalog_table = None    # (catalog uuid, astropy Table), cleared on changes
        self._sky_cache = {}          # image uuid -> (mu at zp = 0, its error) or exception
        self._star_table = None       # per-star table of the last fit
        self._restoring_result = None  # a saved result dict, compared after the first fit
        self._updating = 0
        self._result = None
        self._restored_status = False

        ZeroPointViewerState.selection_mode.set_choices(self, list(SELECTION_MODES))
        ZeroPointViewerState.selection_mode.set_display_func(self, SELECTION_MODE_LABELS.get)
        ZeroPointViewerState.color.set_display_func(
            self, lambda c: "(no colour)" if c is None else c)
        ZeroPointViewerState.subset.set_display_func(
            self, lambda g: "(no subset)" if g is None else g.label)
        ZeroPointViewerState.band.set_display_func(self, str)

        self.image_helper = ManualDataComboHelper(self, "image")
        self.stars_helper = ManualDataComboHelper(self, "stars")
        self.catalog_helper = ManualDataComboHelper(self, "catalog")

        self.add_callback("image", self._on_image_change, priority=100)
        self.add_callback("catalog", self._on_catalog_change, priority=100)
        for name in ("image", "stars", "catalog", "band", "color", "match_radius"):
            self.add_callback(name, self._on_inputs_change)
        for name in ("fit_color_term", "selection_mode", "subset", "excluded_ids", "clip_sigma"):
            self.add_callback(name, self._on_fit_options_change)

        self._set_values(kwargs)
        if data_collection is not None:
            self.data_collection = data_collection

    # -- data collection and restore order ----------------------------------------------------

    def _set_values(self, values):
        values = dict(values)
        data_values = {k: values.pop(k) for k in _DATA_ORDER if k in values}
        if "excluded_ids" in values:
            values["excluded_ids"] = [int(v) for v in values["excluded_ids"] or []]
        for key in _TRANSIENT:
            values.pop(key, None)
        self._updating += 1
        try:
            self.update_from_dict(values)
        finally:
            self._updating -= 1
        if self._dc is None:
            self._pending.update(data_values)
        else:
            self._apply_data_values(data_values)

    def _apply_data_values(self, values):
        self._updating += 1
        try:
            for key in _DATA_ORDER:
                if key in values and values[key] is not None:
                    try:
                        setattr(self, key, values[key])
                    except ValueError:
                        log.warning("zero-point viewer: %s=%r is not available; ignored", key,
                                    values[key])
        finally:
            self._updating -= 1
        self.recompute()

    @property
    def data_collection(self):
        """The data collection the combos choose from (set by the viewer)."""
        return self._dc

    @data_collection.setter
    def data_collection(self, dc):
        if dc is self._dc:
            return
        self.disconnect()
        self._dc = dc
        if dc is None:
            return
        self._listener = _Listener(self)
        hub = dc.hub
        listen = self._listener
        hub.subscribe(listen, DataCollectionAddMessage, handler=listen("_on_dc_change"),
                      filter=lambda m: m.sender is self._dc)
        hub.subscribe(listen, DataCollectionDeleteMessage, handler=listen("_on_dc_change"),
                      filter=lambda m: m.sender is self._dc)
        hub.subscribe(listen, SubsetCreateMessage, handler=listen("_on_subset_message"))
        hub.subscribe(listen, SubsetDeleteMessage, handler=listen("_on_subset_message"))
        hub.subscribe(listen, SubsetUpdateMessage, handler=listen("_on_subset_message"))
        for msg_class in (NumericalDataChangedMessage, DataAddComponentMessage,
                          ComponentsChangedMessage):
            hub.subscribe(listen, msg_class, handler=listen("_on_data_message"),
                          filter=self._is_input_data_message)
        hub.subscribe(listen, DataUpdateMessage, handler=listen("_on_data_update"),
                      filter=self._is_input_data_message)
        pending, self._pending = self._pending, {}
        self._updating += 1
        try:
            self._refresh_data_choices()
            self._refresh_subset_choices()
        finally:
            self._updating -= 1
        self._apply_data_values(pending)

    def disconnect(self):
        """Stop listening to the hub (called when the viewer closes)."""
        if self._dc is not None and self._listener is not None:
            self._dc.hub.unsubscribe_all(self._listener)
        self._listener = None

    # -- choices -----------------------------------------------------------------------------

    def _refresh_data_choices(self):
        datasets = list(self._dc) if self._dc is not None else []
        with delay_callback(self, "image", "stars", "catalog"):
            self.image_helper.set_multiple_data([d for d in datasets if is_image_data(d)])
            self.stars_helper.set_multiple_data([d for d in datasets if is_stars_data(d)])
            self.catalog_helper.set_multiple_data([d for d in datasets if is_catalog_data(d)])
            if self.stars is None or self.stars not in datasets:
                self._pick_stars()

    def _refresh_subset_choices(self):
        groups = list(self._dc.subset_groups) if self._dc is not None else []
        ZeroPointViewerState.subset.set_choices(self, [None] + groups)

    def _refresh_band_choices(self):
        bands = catalog_bands_of(self.catalog)
        previous_band, previous_color = self.band, self.color
        with delay_callback(self, "band", "color"):
            ZeroPointViewerState.band.set_choices(self, bands)
            if bands and previous_band not in bands:
                preferred = (self.image.meta.get("band") if self.image is not None else None)
                self.band = preferred if preferred in bands else bands[0]
            colors = [None] + color_choices(bands)
            ZeroPointViewerState.color.set_choices(self, colors)
            if previous_color is None or previous_color not in colors:
                self.color = self._default_color(colors)

    def _default_color(self, colors):
        """The usual colour for the band (B-V for V or B, V-R for R...) if available."""
        usual = {"B": "B-V", "V": "B-V", "R": "V-R", "I": "V-I", "U": "U-B", "g": "g-r",
                 "r": "g-r", "i": "r-i", "z": "i-z"}
        color = usual.get(self.band)
        return color if color in colors else None

    def _pick_stars(self):
        """Pick the stars dataset of the current image (``'Stars: <image label>'``)."""
        choices = ZeroPointViewerState.stars.get_choices(self)
        if self.image is not None:
            for data in choices:
                if data.meta.get("zp_stars_for") == self.image.uuid:
                    self.stars = data
                    return
            wanted = f"Stars: {self.image.label}"
            for data in choices:
                if data.label == wanted:
                    self.stars = data
                    return
        if self.stars is None and len(choices) == 1:
            self.stars = choices[0]

    # -- callbacks -----------------------------------------------------------------------------

    def _on_image_change(self, *args):
        if self.image is not None and (self.stars is None or
                                       self.stars.meta.get("zp_stars_for") != self.image.uuid):
            self._pick_stars()
        self._pick_catalog()

    def _pick_catalog(self):
        """Pick a catalog linked to the image (``meta['zp_catalog_for']``), else the first one."""
        choices = ZeroPointViewerState.catalog.get_choices(self)
        if not choices:
            return
        linked = [d for d in choices if self.image is not None
                  and d.meta.get("zp_catalog_for") == self.image.uuid]
        if self.catalog is None or (linked and self.catalog not in linked):
            self.catalog = linked[0] if linked else choices[0]

    def _on_catalog_change(self, *args):
        self._catalog_table = None
        self._refresh_band_choices()

    def _on_inputs_change(self, *args):
        self._matches = None
        self._matches_key = None
        if not self._updating:
            self.recompute()

    def _on_fit_options_change(self, *args):
        if not self._updating:
            self.refit()

    def _on_dc_change(self, message):
        self._updating += 1
        try:
            self._refresh_data_choices()
            if self.catalog is None:
                self._pick_catalog()
        finally:
            self._updating -= 1
        self.recompute()

    def _on_subset_message(self, message):
        if isinstance(message, (SubsetCreateMessage, SubsetDeleteMessage)):
            before = self.subset
            self._updating += 1
            try:
                self._refresh_subset_choices()
            finally:
                self._updating -= 1
            if before is not self.subset:
                self.refit()
                return
        if isinstance(message, SubsetUpdateMessage) and message.attribute in ("style", "label"):
            if message.attribute == "label":
                self._refresh_subset_choices()
            return
        subset = message.subset
        if (self.selection_mode != "all" and self.subset is not None
                and getattr(subset, "group", None) is self.subset
                and subset.data is self.stars):
            self.refit()

    def _is_input_data_message(self, message):
        return message.sender is not None and any(
            message.sender is d for d in (self.stars, self.catalog, self.image))

    def _on_data_message(self, message):
        if self.image is not None and message.sender is self.image:
            self._sky_cache.pop(self.image.uuid, None)
        if message.sender is self.catalog:
            self._catalog_table = None
        self._on_inputs_change()

    def _on_data_update(self, message):
        if message.attribute in ("label", "style"):
            return
        self._on_inputs_change()

    # -- the computation -----------------------------------------------------------------------

    @property
    def color_tuple(self):
        """The colour as a pair of bands (``('B', 'V')``) or ``None``."""
        if not self.color:
            return None
        a, b = self.color.split("-", 1)
        return a, b

    def _obstime(self):
        meta = self.image.meta if self.image is not None else {}
        value = meta.get("date_obs") or meta.get("DATE-OBS")
        if value is None and meta.get("zp_header"):
            from .loader import header_from_meta

            value = header_from_meta(self.image).get("DATE-OBS")
        if not value:
            return None
        from ..obstime import observation_time

        return observation_time({"DATE-OBS": value}, self.image.label)

    def matches(self):
        """The crossmatch of the stars with the catalog (cached), an astropy Table."""
        if self.stars is None or self.catalog is None:
            return None
        key = (self.stars.uuid, self.catalog.uuid, float(self.match_radius))
        if self._matches is None or self._matches_key != key:
            sources = data_to_table(self.stars)
            sources.meta.update(self.stars.meta)
            if self._catalog_table is None or self._catalog_table[0] != self.catalog.uuid:
                table = data_to_table(self.catalog)
                table.meta.update(self.catalog.meta)
                self._catalog_table = (self.catalog.uuid, table)
            catalog = self._catalog_table[1]
            matches = _crossmatch(sources, catalog, float(self.match_radius), self._obstime(),
                                  self.stars.meta.get("zp_aperture") or {})
            self._matches = matches
            self._matches_key = key
            self._update_matches_data(matches)
        return self._matches

    def subset_mask(self):
        """Boolean mask over the stars: which stars the chosen subset selects (or ``None``)."""
        if self.subset is None or self.stars is None:
            return None
        try:
            return np.asarray(self.stars.get_mask(self.subset.subset_state), dtype=bool)
        except IncompatibleAttribute as err:
            raise InputError(f"subset {self.subset.label!r} cannot be applied to "
                             f"{self.stars.label!r}: the stars are not linked to the data it "
                             "was drawn on") from err

    def exclusion_mask(self, matches):
        """Boolean mask over the rows of ``matches``: True = excluded by the user."""
        ids = np.asarray(matches["star_id"])
        excluded = np.isin(ids, np.asarray(list(self.excluded_ids), dtype=ids.dtype))
        if self.selection_mode == "all" or self.subset is None:
            return excluded
        mask = self.subset_mask()
        stars_ids = np.asarray(self.stars["star_id"])
        chosen = np.isin(ids, stars_ids[mask])
        if self.selection_mode == "exclude":
            return excluded | chosen
        return excluded | ~chosen

    def recompute(self):
        """Crossmatch again if needed, then refit."""
        self.refit()

    def refit(self):
        """Fit the zero point with the current choices; sets ``result`` and ``status``."""
        if self._dc is None or self._updating:
            return
        result, status = None, ""
        try:
            result = self._fit_now()
        except ZeropointError as err:
            status = str(err)
        except ValueError as err:  # bad values in a dataset (astropy/numpy): keep the viewer up
            log.warning("zero-point fit failed", exc_info=True)
            status = f"the fit failed: {err}"
        if result is None and not status:
            status = self._missing_inputs()
        self._result = result
        self._check_restored_result()
        with delay_callback(self, "status", "revision"):
            self.status = self.status if self._restored_status else status
            self._restored_status = False
            self.revision += 1

    @property
    def result(self):
        """The current :class:`~glue_zeropoint.zeropoint.ZeroPoint`, or ``None`` when no fit
        could be made (see ``status``). Watch ``revision`` to be told of a new result: a
        result holds arrays, which echo cannot compare."""
        return self._result

    def _missing_inputs(self):
        missing = [name for name in ("image", "stars", "catalog", "band")
                   if getattr(self, name) is None]
        if missing:
            return "choose " + ", ".join(missing)
        return ""

    def _fit_now(self):
        from ..zeropoint import FitSettings, fit_zeropoint

        if any(getattr(self, name) is None for name in ("stars", "catalog", "band")):
            self._star_table = None
            return None
        matches = self.matches()
        exclude = self.exclusion_mask(matches)
        exptime = self.image.meta.get("exptime") if self.image is not None else None
        catalog_name = (self.catalog.meta.get("catalog") or self.catalog.meta.get("zp_catalog")
                        or self.catalog.label)
        settings = FitSettings(fit_color=bool(self.fit_color_term and self.color),
                               clip_sigma=float(self.clip_sigma))
        result = fit_zeropoint(matches, self.band, color=self.color, exclude=exclude,
                               exptime=None if exptime is None else float(exptime),
                               catalog=str(catalog_name), settings=settings)
        self._attach_sky(result)
        self._star_table = self._make_star_table(result)
        return result

    # -- sky surface brightness ------------------------------------------------------------

    def _sky_at_zero(self):
        """``(mu, mu_err)`` of the image at ZP = 0 (the sky alone), measured once per image."""
        image = self.image
        if image is None:
            return None
        key = image.uuid
        if key not in self._sky_cache:
            from ..zeropoint import sky_surface_brightness
            from .loader import data_to_ccd

            try:
                self._sky_cache[key] = sky_surface_brightness(data_to_ccd(image), 0.0,
                                                              zp_err=0.0)
            except (ZeropointError, KeyError) as err:  # no flux component, no exptime...
                log.info("zero-point viewer: no sky brightness for %s: %s", image.label, err)
                self._sky_cache[key] = None
        return self._sky_cache[key]

    def _attach_sky(self, result):
        """Sky brightness ``mu = ZP + mu(ZP = 0)``: measured once per image, shifted per fit,
        its error the sky error and the total ZP error in quadrature."""
        sky = self._sky_at_zero()
        if result is None or sky is None:
            return
        mu0, err0 = sky
        result.sky_sb = float(mu0) + float(result.zp)
        result.sky_sb_err = float(math.hypot(float(err0), float(result.zp_err_total)))

    # -- per-star view -------------------------------------------------------------------------

    def _make_star_table(self, result):
        """The fit's per-star table plus ``status`` (used / clipped / excluded / left out),
        ``group`` (the reason group a star is drawn under) and ``why`` (the reasons in
        words, for tooltips)."""
        from ..zeropoint.reasons import describe, reason_groups

        stars = result.stars.copy(copy_data=True)
        reason = np.asarray(stars["reason"]).astype(str)
        group = reason_groups(reason)
        status = np.full(len(stars), "left out", dtype="U10")
        status[group == "fit"] = "clipped"
        status[group == "user"] = "excluded"
        status[group == "used"] = "used"
        stars["status"] = status
        stars["group"] = group
        uniq, inverse = np.unique(reason, return_inverse=True)
        stars["why"] = np.array([describe(r) for r in uniq], dtype=str)[inverse.ravel()] \
            if len(reason) else np.array([], dtype=str)
        if "colour" not in stars.colnames:
            stars["colour"] = np.full(len(stars), np.nan)
        return stars

    def star_table(self):
        """The per-star table of the last fit, or ``None``: the columns of
        ``ZeroPoint.stars`` (``star_id``, ``mag_cat``, ``mag_inst``, ``colour``, ``y``,
        ``residual``, ``used``, ``reason``...) plus ``status`` (``'used'``, ``'clipped'``,
        ``'excluded'`` by the user, or ``'left out'``: unmatched, flagged, variable...),
        ``group`` (``'used'``, ``'user'``, ``'fit'``, ``'match'``, ``'photometry'``,
        ``'catalog'``: see :mod:`glue_zeropoint.zeropoint.reasons`) and ``why`` (the reason
        codes explained)."""
        return self._star_table

    # -- the matches dataset (for scatter plots of catalog vs instrumental magnitudes) ---------

    def matches_data(self):
        """The ``'Matches: <stars label>'`` dataset of the current stars, or ``None``."""
        if self._dc is None or self.stars is None:
            return None
        for data in self._dc:
            if (data.meta.get("zp_kind") == "matches"
                    and data.meta.get("zp_matches_for") == self.stars.uuid):
                return data
        return None

    def add_matches_data(self):
        """Create (or refresh) the matches dataset of the current stars and return it.

        One row per star: ``star_id``, ``x``, ``y``, ``ra``, ``dec``, ``mag_inst``,
        ``mag_inst_err``, ``cat_mag``, ``cat_err`` (catalog ``band``), ``colour`` (catalog
        ``color``), ``delta`` (``cat_mag - mag_inst``, the per-star zero point; independent of
        the fit so a region drawn on it stays put), ``sep_arcsec`` and ``matched`` (1 for a
        clean match). It is joined to the stars on ``star_id`` (``join_on_key``) and linked to
        the image by pixels, so a region drawn in a scatter plot of it selects the stars (and
        the zero-point viewer can exclude them); it follows the stars when they change.
        """
        if self._dc is None or self.stars is None or self.catalog is None or not self.band:
            raise InputError("choose the stars, the catalog and the band first")
        matches = self.matches()
        data = self.matches_data()
        new = self._matches_to_data(matches)
        if data is None:
            data = new
            self._dc.append(data)
            # both ways: regions drawn on either select rows of the other
            self.stars.join_on_key(data, "star_id", "star_id")
            data.join_on_key(self.stars, "star_id", "star_id")
            if self.image is not None:
                from .links import link_pixels

                link_pixels(self._dc, data, self.image)
        else:
            data.update_values_from_data(new)
            data.meta.update(new.meta)
        return data

    def _update_matches_data(self, matches):
        data = self.matches_data()
        if data is not None and self.band:
            new = self._matches_to_data(matches)
            data.update_values_from_data(new)
            data.meta.update(new.meta)

    def _matches_to_data(self, matches):
        from glue.core import Data

        band = self.band
        n = len(matches)

        def col(name, default=np.nan):
            if name in matches.colnames:
                return np.ma.filled(np.ma.asarray(matches[name]).astype(float), np.nan)
            return np.full(n, default, dtype=float)

        colour = np.full(n, np.nan)
        if self.color_tuple is not None:
            a, b = self.color_tuple
            colour = col(f"cat_mag_{a}") - col(f"cat_mag_{b}")
        data = Data(label=f"Matches: {self.stars.label.removeprefix('Stars: ')}")
        data["star_id"] = np.asarray(matches["star_id"]).astype(np.int64)
        for name in ("x", "y", "ra", "dec", "mag_inst", "mag_inst_err"):
            data[name] = col(name)
        data["cat_mag"] = col(f"cat_mag_{band}")
        data["cat_err"] = col(f"cat_err_{band}")
        data["colour"] = colour
        data["delta"] = data["cat_mag"] - data["mag_inst"]
        data["sep_arcsec"] = col("sep_arcsec")
        data["matched"] = (np.asarray(matches["match"]).astype(str) == "ok").astype(np.int8)
        data.meta.update({"zp_kind": "matches", "zp_matches_for": self.stars.uuid,
                          "zp_band": band, "zp_color": self.color})
        return data

    # -- user actions --------------------------------------------------------------------------

    def star_ids_in(self, group):
        """``star_id`` of the stars selected by a subset group (through links)."""
        if group is None or self.stars is None:
            return []
        try:
            mask = np.asarray(self.stars.get_mask(group.subset_state), dtype=bool)
        except IncompatibleAttribute as err:
            raise InputError(f"subset {group.label!r} cannot be applied to "
                             f"{self.stars.label!r}: the stars are not linked to it") from err
        return [int(i) for i in np.asarray(self.stars["star_id"])[mask]]

    def exclude_stars(self, star_ids):
        """Add stars (by ``star_id``) to the user-excluded list."""
        ids = sorted(set(int(i) for i in self.excluded_ids) | {int(i) for i in star_ids})
        self.excluded_ids = ids

    def exclude_subset(self, group=None):
        """Exclude the stars of ``group`` (default: the chosen ``subset``); returns their ids."""
        group = self.subset if group is None else group
        ids = self.star_ids_in(group)
        self.exclude_stars(ids)
        return ids

    def include_all(self):
        """Forget every user exclusion and stop using the subset (``selection_mode='all'``)."""
        with delay_callback(self, "excluded_ids", "selection_mode"):
            self.excluded_ids = []
            self.selection_mode = "all"

    # -- sessions ------------------------------------------------------------------------------

    def __gluestate__(self, context):
        values = {}
        for key, value in self.as_dict().items():
            if key in _TRANSIENT:
                continue
            if key == "excluded_ids":
                value = [int(v) for v in value]
            values[key] = context.id(value)
        # the result goes in as JSON text: a string is stored inline, whereas a fresh dict
        # would be registered as a new object on every pass of glue's serializer
        values["result"] = context.id(self.result_json())
        return {"values": values}

    def result_json(self):
        """The current result as ``zeropoint.json`` text (``ZeroPoint.to_json()``), or ``''``."""
        return self.result.to_json() if self.result is not None else ""

    @classmethod
    def __setgluestate__(cls, rec, context):
        values = {key: context.object(value) for key, value in rec["values"].items()}
        saved = values.pop("result", None)
        state = cls(**values)
        state._restoring_result = json.loads(saved) if saved else None
        return state

    def _check_restored_result(self):
        """After a restore, compare the re-fitted result with the one saved in the session."""
        saved, self._restoring_result = self._restoring_result, None
        if not saved:
            return
        self.saved_result = saved
        if self.result is None:
            try:
                from ..zeropoint import ZeroPoint

                self._result = ZeroPoint.from_dict(saved)
                self.status = ("showing the saved result: the fit could not be redone "
                               f"({self._missing_inputs() or 'see the log'})")
                self._restored_status = True
            except (ZeropointError, TypeError) as err:
                log.warning("could not rebuild the saved zero point: %s", err)
            return
        zp = saved.get("zp")
        if zp is not None and abs(float(zp) - float(self.result.zp)) > 1e-6:
            log.warning("zero point refitted after restore (%.4f) differs from the saved one "
                        "(%.4f)", self.result.zp, zp)

    saved_result = None
    """The result dict saved in the session this state was restored from (or ``None``)."""


def register():
    """Nothing to register: the state is used by the Qt viewer and by scripts."""
