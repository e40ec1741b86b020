"""Figures of the loss landscape (PNG, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def axis_labels(explained: np.ndarray, kind: str) -> tuple[str, str]:
    name = "PC" if kind == "pca" else "direction "
    return tuple(f"{name}{i + 1} ({100 * r:.1f} %)" for i, r in enumerate(explained))


def surface(path: Path, A, B, loss, coords, traj_loss, labels) -> None:
    """The seed's figure: 3-D surface with the trajectory on it."""
    fig = plt.figure(figsize=(8, 6.5))
    ax = fig.add_subplot(projection="3d")
    AA, BB = np.meshgrid(A, B)
    ax.plot_surface(AA, BB, loss, cmap="viridis", alpha=0.7, linewidth=0, antialiased=True)
    ax.plot(coords[:, 0], coords[:, 1], traj_loss, color="red", marker="o", markersize=3,
            label="SGD trajectory (loss on the plane)")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_zlabel("cross-entropy")
    ax.set_title("Cross-entropy landscape with the SGD trajectory")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def contour(path: Path, A, B, loss, coords, labels, title: str) -> None:
    """Filled contours of the loss, the trajectory with arrows, start and end marked."""
    fig, ax = plt.subplots(figsize=(7.5, 6))
    levels = np.quantile(loss, np.linspace(0, 1, 30))
    filled = ax.contourf(A, B, loss, levels=np.unique(levels), cmap="viridis")
    ax.contour(A, B, loss, levels=np.unique(levels)[::3], colors="white", linewidths=0.4)
    fig.colorbar(filled, ax=ax, label="cross-entropy")
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
