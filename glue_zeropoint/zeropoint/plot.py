"""A summary figure of a zero-point measurement (matplotlib, Agg canvas, no pyplot).

Panels: residuals against catalog magnitude, residuals against colour (when there is one), and
the image with the used (green circles) and rejected (red crosses) stars marked.
"""

import numpy as np

from ..io import atomic_path

__all__ = ["summary_figure", "save_summary_png"]


def _display_image(data, max_side=1200):
    data = np.asarray(data, float)
    f = max(1, int(np.ceil(max(data.shape) / max_side)))
    small = data[::f, ::f]
    finite = small[np.isfinite(small)]
    if finite.size:
        lo, hi = np.percentile(finite, [25.0, 99.5])
        if hi <= lo:
            hi = lo + 1.0
    else:
        lo, hi = 0.0, 1.0
    return small, f, lo, hi


def summary_figure(measurement, image=None, title=None):
    """A matplotlib Figure (Agg canvas) summarising a :class:`Measurement`.

    Parameters
    ----------
    measurement : Measurement
    image : ndarray or CCDData, optional
        Shown with the stars marked when given.
    title : str, optional
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    zp = measurement.zeropoint
    st = zp.stars
    used = np.asarray(st["used"], bool)
    finite = np.isfinite(np.asarray(st["residual"], float))
    has_colour = "colour" in st.colnames and np.isfinite(np.asarray(st["colour"], float)).any()
    ncols = 2 + (1 if image is not None else 0)
    fig = Figure(figsize=(5.0 * ncols, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    ax1 = fig.add_subplot(1, ncols, 1)
    res = np.asarray(st["residual"], float)
    mag = np.asarray(st["mag_cat"], float)
    err = np.asarray(st["y_err"], float)
    rej = finite & ~used
    ax1.errorbar(mag[used], res[used], yerr=err[used], fmt="o", ms=3, color="tab:green",
                 ecolor="0.7", label=f"used ({used.sum()})")
    ax1.plot(mag[rej], res[rej], "x", color="tab:red", ms=4, label=f"rejected ({rej.sum()})")
    ax1.axhline(0.0, color="k", lw=0.8)
    ax1.set_xlabel(f"catalog {zp.band} (mag)")
    ax1.set_ylabel("residual (mag)")
    if used.any():
        spread = max(5 * zp.scatter, 0.1)
        ax1.set_ylim(-spread, spread)
    ax1.legend(loc="best", fontsize=8)
    ax1.set_title(f"ZP {zp.zp:.3f} ± {zp.zp_err:.3f} (total {zp.zp_err_total:.3f}), "
                  f"scatter {zp.scatter:.3f}", fontsize=9)
    ax2 = fig.add_subplot(1, ncols, 2)
    if has_colour:
        col = np.asarray(st["colour"], float)
        # residuals about the ZP only, to show the colour dependence
        y = np.asarray(st["y"], float) - zp.zp
        ax2.plot(col[used], y[used], "o", ms=3, color="tab:green")
        ax2.plot(col[rej], y[rej], "x", ms=4, color="tab:red")
        if zp.color_term is not None:
            xs = np.linspace(np.nanmin(col[finite]), np.nanmax(col[finite]), 10)
            ax2.plot(xs, zp.color_term * (xs - zp.color_ref), "k-",
                     label=f"c = {zp.color_term:.3f} ± {zp.color_term_err:.3f}")
            ax2.legend(loc="best", fontsize=8)
        else:
            ax2.set_title(f"no colour term: {zp.color_term_reason}", fontsize=8)
        ax2.set_xlabel(f"{zp.color} (mag)")
        ax2.set_ylabel("m_cat - m_inst - ZP (mag)")
        if used.any():
            spread = max(5 * zp.scatter, 0.1) + abs(zp.color_term or 0) * 2
            ax2.set_ylim(-spread, spread)
    else:
        ax2.hist(res[used], bins=30, color="tab:green")
        ax2.set_xlabel("residual of used stars (mag)")
        ax2.set_title("no colour given", fontsize=9)
    if image is not None:
        data = getattr(image, "data", image)
        small, f, lo, hi = _display_image(data)
        ax3 = fig.add_subplot(1, ncols, 3)
        ax3.imshow(small, origin="lower", cmap="gray", vmin=lo, vmax=hi,
                   extent=(-0.5, small.shape[1] * f - 0.5, -0.5, small.shape[0] * f - 0.5))
        if "x_image" in st.colnames:
            x = np.asarray(st["x_image"], float)
            yy = np.asarray(st["y_image"], float)
            r = 6 * max(1, f)
            ax3.scatter(x[used], yy[used], s=r * 4, facecolors="none", edgecolors="lime",
                        linewidths=0.8)
            ax3.scatter(x[~used], yy[~used], s=r * 2, marker="x", color="red", linewidths=0.6)
        ax3.set_title("used (green) / rejected (red)", fontsize=9)
        ax3.set_xticks([])
        ax3.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_summary_png(measurement, path, image=None, title=None):
    """Write :func:`summary_figure` to ``path`` atomically; returns the path."""
    fig = summary_figure(measurement, image=image, title=title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
