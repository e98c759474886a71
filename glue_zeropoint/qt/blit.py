"""Fast redraws of an image viewer when only the stars (or a tool's overlay) changed.

A click of the star tool changes a few hundred markers, but glue redraws a viewer by drawing its
whole figure again: the image, and with a WCS the ``WCSAxes`` ticks, grid and labels, which are
two thirds of the time of a click on a 4096 x 4096 image with 500 stars (see
``tests/benchmarks/bench_glue.py``). :class:`FastOverlayRedraw` uses matplotlib's blitting
recipe instead:

- the artists that change with the stars are *animated* (matplotlib leaves them out of a figure
  draw): those of glue's layer artists showing a stars or matches dataset (or a subset of one),
  the aperture overlay and the star tool's rubber band; to keep glue's stacking, also the
  layers glue puts above them (catalog markers, a subset drawn on the image), the legend
  (its 'best' place avoids the markers) with whatever lies above it, and the spines and
  axis artists matplotlib draws over the data (grid lines, polar and full-sky labels). glue
  draws its image layers as one composite image at the bottom, which stays in the
  background. The same object serves glue's scatter and histogram viewers of the stars;
- after each full draw the canvas without them is kept as the background, and they are drawn
  on top;
- a redraw asked for by one of those layers (their ``redraw``) or by :meth:`request` only
  restores that background and draws the animated artists again, *provided* nothing else asked
  for a redraw since the last full draw and the view (size, limits) is the same.

Whether "nothing else changed" is decided by who asked, not by matplotlib's ``stale`` flags: the
image artist glue uses marks itself stale on every mouse release, picking creates tick artists,
and WCSAxes' tick labels change without marking anything stale. Any other ``draw_idle`` of the
canvas (glue's viewer and image layers, pan, zoom, resize, ROIs) and any direct ``draw()`` that
no fast request is waiting for draw the whole figure.

The trade-offs: a change to another artist made without asking for a redraw (e.g. ``axes.
set_title`` typed in a terminal) shows only at the next full draw, not at the next blit (glue
itself asks for a redraw after each change it makes); and WCSAxes draws its frame and inward
ticks after the layers, so a marker or subset touching the edge of the axes covers a tick
there until the next full draw.

The canvas's ``draw`` and ``draw_idle`` are replaced on this one canvas instance, and the
``redraw`` of the stars' layer artists; :meth:`FastOverlayRedraw.remove` puts them back. Saving
a figure is unaffected: matplotlib draws animated artists when saving. The viewer, its layer
artists and the animated artists are held weakly (a closed viewer is freed).

The switch
----------
All of this sits behind one switch, :data:`ENABLED`: set the environment variable
``GLUE_ZEROPOINT_BLIT=0`` before starting glue, or in Python::

    import glue_zeropoint.qt.blit; glue_zeropoint.qt.blit.set_enabled(False)

Then nothing is replaced on any canvas or layer (blitting already installed is removed), the
overlays are ordinary artists, and every change is a full draw as glue does it: slower on big
images, but the reference to compare against when a redraw looks wrong.
"""

import logging
import os
import weakref

__all__ = ["FastOverlayRedraw", "install_fast_redraw", "is_dynamic_layer", "ENABLED",
           "blit_enabled", "set_enabled", "request_redraw"]

#: The switch: True to blit the stars' overlays (default), False for glue's full draws. The
#: default comes from the environment variable ``GLUE_ZEROPOINT_BLIT`` (``0``, ``false``,
#: ``no`` or ``off`` turn it off).
ENABLED = os.environ.get("GLUE_ZEROPOINT_BLIT", "1").strip().lower() not in (
    "0", "false", "no", "off")

_installed = weakref.WeakSet()  # the live FastOverlayRedraw objects, for set_enabled(False)

log = logging.getLogger(__name__)

DYNAMIC_KINDS = ("stars", "matches")


def blit_enabled():
    """The value of the switch :data:`ENABLED`."""
    return bool(ENABLED)


def set_enabled(enabled):
    """Turn the blitting on or off; off removes it from every canvas it is installed on."""
    global ENABLED
    ENABLED = bool(enabled)
    if not ENABLED:
        for fast in list(_installed):
            fast.remove()


def request_redraw(viewer, *overlays):
    """Redraw a viewer after its ``overlays`` (artists only we change: the apertures, the
    rubber band) changed: when enabled they are animated and blitted, else a full draw."""
    if not blit_enabled():
        for artist in overlays:
            artist.set_animated(False)
        viewer.figure.canvas.draw_idle()
        return
    fast = install_fast_redraw(viewer)
    for artist in overlays:
        if not artist.get_animated():  # made while the switch was off
            artist.set_animated(True)
            fast._dirty = True  # the background still has it: draw it all once
    fast.request()


def is_dynamic_layer(layer):
    """True for a glue-zeropoint stars or matches dataset, or a subset of one."""
    data = getattr(layer, "data", layer)
    meta = getattr(data, "meta", None) or {}
    return meta.get("zp_kind") in DYNAMIC_KINDS


def _flatten(items):
    """Artists in a list that may hold ``None`` and containers (glue's error bars)."""
    from matplotlib.container import Container

    for item in items:
        if item is None:
            continue
        if isinstance(item, Container):
            yield from _flatten(item.get_children())
        else:
            yield item


def _drawn_over_the_data(axes):
    """Artists of an axes that matplotlib draws over the data area above the layers: the
    spines (four lines), and the axis artists when they reach into the data area (grid lines,
    inward ticks, or the labels and grid of polar and full-sky plots). WCSAxes draws its frame,
    ticks and grid after the layers itself, so none of its artists are animated (its inward
    ticks are the documented exception)."""
    from astropy.visualization.wcsaxes import WCSAxes

    if isinstance(axes, WCSAxes):
        return []
    artists = list(getattr(axes, "spines", {}).values())
    for axis in (axes.xaxis, axes.yaxis):
        params = axis.get_tick_params()
        if (axes.name != "rectilinear" or params.get("gridOn")
                or params.get("direction", "out") != "out"
                or any(line.get_visible() for line in axis.get_gridlines())):
            artists.append(axis)
    return artists


class FastOverlayRedraw:
    """Blit the stars' artists of a glue matplotlib viewer over a cached background."""

    def __init__(self, viewer):
        # weakly: the canvas (which holds this object through its draw methods) may outlive
        # a closed viewer, and must not keep it alive
        self._viewer = weakref.ref(viewer)
        self.canvas = viewer.figure.canvas
        self.figure = viewer.figure
        self._full_draw = self.canvas.draw
        self._background = None
        self._key = None
        self._dirty = True       # something besides the animated artists changed
        self._pending = False    # a fast redraw was asked for
        self._wrapped = []       # weak references to layer artists whose redraw is ours
        self._mine = weakref.WeakValueDictionary()  # id -> artist animated here
        self.full_draws = 0
        self.fast_draws = 0
        self.canvas.draw = self.draw
        self.canvas.draw_idle = self._draw_idle_other
        _installed.add(self)

    def _wrapped_alive(self):
        return [la for la in (ref() for ref in self._wrapped) if la is not None]

    def remove(self):
        """Give the canvas its own ``draw``/``draw_idle`` back and stop animating the layers."""
        if self.canvas is None:
            return
        for name, ours in (("draw", self.draw), ("draw_idle", self._draw_idle_other)):
            if self.canvas.__dict__.get(name) == ours:
                delattr(self.canvas, name)
        for layer_artist in self._wrapped_alive():
            if layer_artist.__dict__.get("redraw") == self.request:
                del layer_artist.redraw
        for artist in list(self._mine.values()):
            artist.set_animated(False)
        for axes in self.figure.axes:  # the overlays animated by their makers too
            for artist in axes.get_children():
                if artist.get_animated():
                    artist.set_animated(False)
        self._wrapped = []
        self._mine = weakref.WeakValueDictionary()
        _installed.discard(self)
        self._background = None
        viewer = self.viewer
        if viewer is not None and getattr(viewer, "_zp_fast_redraw", None) is self:
            del viewer._zp_fast_redraw
        self.canvas = self.figure = None
        self._viewer = lambda: None

    @property
    def viewer(self):
        """The viewer, or ``None`` once it is gone."""
        return self._viewer()

    # -- who asks for a redraw ------------------------------------------------------------------

    def _canvas_draw_idle(self):
        # looked up on the class each time: glue's defer_draw swaps it there
        canvas = self.canvas
        type(canvas).draw_idle.__get__(canvas, type(canvas))()

    def request(self):
        """Ask for a redraw in which only animated artists changed."""
        if self.canvas is None:
            return
        self._pending = True
        self._canvas_draw_idle()

    def _draw_idle_other(self, *args, **kwargs):
        self._dirty = True
        self._canvas_draw_idle()

    # -- the artists drawn on top -----------------------------------------------------------

    def _plan(self):
        """Animate what a blit must draw; returns ``(artists by zorder, changed)``.

        Animated (and their layers' ``redraw`` routed to :meth:`request`): the artists of the
        stars/matches layers and of every other layer glue stacks above the lowest of them
        (catalog markers, subsets drawn on the image), so glue's order is kept. While a stars
        layer is shown, also the legend (its 'best' place avoids the markers), every layer
        above the legend, and the axes' spines and axis artists reaching into the data area
        above them (:func:`_drawn_over_the_data`). glue draws all its image layers as one
        composite image at the bottom (zorder 0), whatever their order in the layer list:
        that stays in the background. ``changed``: an artist joined or left the animated set,
        so the background must be redrawn.
        """
        from glue.viewers.image.layer_artist import ImageLayerArtist

        layers = list(getattr(self.viewer, "layers", ()))
        dynamic = [la for la in layers if is_dynamic_layer(la.layer)]
        shown = [la.zorder for la in dynamic if la.visible and la.enabled]
        legends = [a.get_legend() for a in self.figure.axes] if shown else []
        legends = [legend for legend in legends if legend is not None]
        floor = min(shown + [legend.get_zorder() for legend in legends]) if shown else None
        on_top = list(dynamic)
        for layer_artist in layers:
            if (floor is not None and not is_dynamic_layer(layer_artist.layer)
                    and not isinstance(layer_artist, ImageLayerArtist)
                    and layer_artist.zorder > floor):
                on_top.append(layer_artist)  # hidden or disabled ones too: they may come back
        # their redraws (e.g. a subset brushed elsewhere) change only animated artists
        wrapped = self._wrapped_alive()
        for layer_artist in on_top:
            if "redraw" not in layer_artist.__dict__:
                layer_artist.redraw = self.request
                wrapped.append(layer_artist)
        for layer_artist in wrapped:
            if (not any(layer_artist is x for x in on_top)
                    and layer_artist.__dict__.get("redraw") == self.request):
                del layer_artist.redraw
        self._wrapped = [weakref.ref(la) for la in wrapped if any(la is x for x in on_top)]

        wanted = {id(legend): legend for legend in legends}
        if floor is not None:
            for axes in self.figure.axes:
                for artist in _drawn_over_the_data(axes):
                    if artist.get_zorder() > floor:
                        wanted[id(artist)] = artist
        for layer_artist in on_top:
            for artist in _flatten(getattr(layer_artist, "mpl_artists", ())):
                wanted[id(artist)] = artist
        changed = False
        for key, artist in list(self._mine.items()):
            if key not in wanted and artist.get_animated():
                artist.set_animated(False)
                changed = True
        for artist in wanted.values():
            if not artist.get_animated():
                artist.set_animated(True)
                changed = True
        self._mine = weakref.WeakValueDictionary(wanted)

        found = []
        for axes in self.figure.axes:
            found.extend(a for a in axes.get_children() if a.get_animated())
        return sorted(found, key=lambda a: a.get_zorder()), changed

    def _view_key(self):
        return (tuple(self.figure.bbox.bounds), self.canvas.device_pixel_ratio,
                tuple(tuple(axes.viewLim.bounds) + tuple(axes.bbox.bounds)
                      for axes in self.figure.axes))

    def _whole_canvas(self):
        # the renderer's size: figure.bbox can be a hair short (231.99999 px) and then
        # copy_from_bbox leaves out the top row, where text would pile up blit after blit
        from matplotlib.transforms import Bbox

        renderer = self.canvas.get_renderer()
        return Bbox.from_bounds(0, 0, renderer.width, renderer.height)

    def _draw_on_top(self, artists):
        renderer = self.canvas.get_renderer()
        for artist in artists:
            if artist.get_visible() and artist.axes is not None:
                artist.draw(renderer)

    # -- the canvas draw ----------------------------------------------------------------------

    def draw(self, *args, **kwargs):
        """The canvas's draw: blit when only animated artists changed, else draw it all."""
        canvas = self.canvas
        if canvas is None or getattr(canvas, "_is_drawing", False):
            return None
        artists, changed = self._plan()
        fast = (not changed and self._pending and not self._dirty
                and self._background is not None and self._key == self._view_key())
        self._pending = False
        if fast:
            try:
                canvas.restore_region(self._background)
                self._draw_on_top(artists)
            except Exception:  # noqa: BLE001 - a failed blit falls back to a full draw
                log.debug("blit failed; drawing the whole figure", exc_info=True)
            else:
                self.fast_draws += 1
                canvas.update()
                return None
        result = self._full_draw(*args, **kwargs)
        self.full_draws += 1
        self._dirty = False
        self._background = canvas.copy_from_bbox(self._whole_canvas())
        self._key = self._view_key()
        self._draw_on_top(artists)
        return result


def install_fast_redraw(viewer):
    """The viewer's :class:`FastOverlayRedraw`, installed on first use; None when the switch
    (:data:`ENABLED`) is off."""
    if not blit_enabled():
        return None
    fast = getattr(viewer, "_zp_fast_redraw", None)
    if fast is None or fast.canvas is None:
        fast = FastOverlayRedraw(viewer)
        viewer._zp_fast_redraw = fast
    return fast
