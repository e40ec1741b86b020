"""The study's figures as PNG (Agg backend: no screen needed): training histories, the search
results and the loss landscape."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


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


def history(path: Path, rows: list[dict], panels: list[tuple[str, list[str]]],
            title: str) -> None:
    """Per-epoch curves side by side: one panel per (y label, [column, ...]) of ``rows``, each a
    dict with an "epoch" key (the seed's "loss over the last 20 epochs" figure is one panel)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(max(7.0, 5.5 * len(panels)), 4.2),
                             squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for ax, (ylabel, columns) in zip(axes[0], panels):
        for column in columns:
            ax.plot(epochs, [r[column] for r in rows], marker="o", markersize=3,
                    label=column.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ranking(path: Path, labels: list[str], values: list[float], xlabel: str,
            title: str) -> None:
    """Horizontal bars sorted best (largest) on top, the best one highlighted and every value
    written at its bar; the axis starts near the smallest value so that close values differ."""
    order = np.argsort(values)  # ascending: the best ends on top
    values = np.asarray(values)[order]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(values) + 1.2))
    colors = ["tab:gray"] * (len(values) - 1) + ["tab:orange"]
    ax.barh(np.arange(len(values)), values, color=colors)
    ax.set_yticks(np.arange(len(values)), [labels[i] for i in order], fontsize=8)
    span = values.max() - values.min() or abs(values.max()) or 1.0
    ax.set_xlim(values.min() - 0.25 * span, values.max() + 0.15 * span)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.4f}", va="center", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
