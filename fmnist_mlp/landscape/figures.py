"""The loss landscape's figures, as PNG (Agg backend: no screen needed): DVC's Vega templates
cannot draw a surface or filled contours. Per-epoch curves and confusion matrices are DVC plots
(dvc.yaml); the search's ranking is selection/figure.py."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def axis_labels(explained: np.ndarray, kind: str) -> tuple[str, str]:
    name = "PC" if kind == "pca" else "direction "
    return tuple(f"{name}{i + 1} ({100 * r:.1f} %)" for i, r in enumerate(explained))


def view_azimuth(A, B, loss) -> float:
    """Azimuth (degrees) that puts the camera on the side of the grid's lowest point, so that
    no ridge lies between the viewer and the minimum (axes scaled to the unit box, as drawn)."""
    i, j = np.unravel_index(np.argmin(loss), loss.shape)  # rows follow B, columns A
    x = (A[j] - A.min()) / (np.ptp(A) or 1.0) - 0.5
    y = (B[i] - B.min()) / (np.ptp(B) or 1.0) - 0.5
    return float(np.degrees(np.arctan2(y, x))) if x or y else -60.0


def surface(path: Path, A, B, loss, coords, traj_loss, labels) -> None:
    """The seed's figure: the loss surface, the trajectory drawn over it with start and end
    marked, seen from the side of the lowest point."""
    fig = plt.figure(figsize=(8.5, 7))
    ax = fig.add_subplot(projection="3d", computed_zorder=False)  # drawn in call order
    AA, BB = np.meshgrid(A, B)
    ax.plot_surface(AA, BB, loss, cmap="viridis", alpha=0.8, linewidth=0, antialiased=True,
                    zorder=1)
    lift = 0.01 * np.ptp(loss)  # a hair above the surface
    ax.plot(coords[:, 0], coords[:, 1], traj_loss + lift, color="red", marker="o",
            markersize=3, linewidth=1.5, zorder=3, label="SGD trajectory (loss on the plane)")
    ax.scatter(*coords[0], traj_loss[0] + lift, s=80, color="white", edgecolor="black",
               depthshade=False, zorder=4, label="start")
    ax.scatter(*coords[-1], traj_loss[-1] + lift, s=180, marker="*", color="orange",
               edgecolor="black", depthshade=False, zorder=4, label="end")
    i, j = np.unravel_index(np.argmin(loss), loss.shape)
    ax.scatter(A[j], B[i], loss[i, j] + lift, s=70, marker="v", color="deepskyblue",
               edgecolor="black", depthshade=False, zorder=4,
               label=f"lowest loss on the grid ({loss[i, j]:.3f})")
    ax.view_init(elev=35, azim=view_azimuth(A, B, loss))
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_zlabel("cross-entropy")
    ax.set_title("Cross-entropy landscape with the SGD trajectory")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def contour(path: Path, A, B, loss, coords, labels, title: str) -> None:
    """Filled contours of the loss at its quantiles (each colour covers the same share of the
    grid, so the low basin is resolved), the trajectory with arrows, start and end marked."""
    fig, ax = plt.subplots(figsize=(7.5, 6))
    levels = np.unique(np.quantile(loss, np.linspace(0, 1, 30)))
    filled = ax.contourf(A, B, loss, levels=levels, cmap="viridis")
    ax.contour(A, B, loss, levels=levels[::3], colors="white", linewidths=0.4)
    bar = fig.colorbar(filled, ax=ax, label="cross-entropy: 30 quantile levels, "
                                             "each colour 1/29 of the grid")
    bar.set_ticks(levels[::3])
    bar.set_ticklabels([f"{v:.3g}" for v in levels[::3]])
    ax.plot(coords[:, 0], coords[:, 1], color="red", linewidth=1)
    ax.quiver(coords[:-1, 0], coords[:-1, 1], *np.diff(coords, axis=0).T, color="red",
              angles="xy", scale_units="xy", scale=1, width=0.004)
    ax.plot(*coords[0], "o", color="white", markeredgecolor="black", markersize=9, label="start")
    ax.plot(*coords[-1], "*", color="orange", markeredgecolor="black", markersize=15,
            label="end")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
