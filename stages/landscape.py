"""landscape: the loss on a plane through the scratch model's SGD trajectory.

Writes OUT_NPZ (grid axes, loss and accuracy grids, trajectory coordinates and losses),
METRICS_JSON (the share of the trajectory's variance in the plane, the lowest loss on it),
REPORT_JSON (the rest: the share along each axis, the highest loss, how far the trajectory is off
the plane) and
PLOTS_DIR/landscape_{surface,contour}.png.
"""

import fmnist_mlp.core.startup  # noqa: F401  (first: the numeric profile before numpy)

import time
from pathlib import Path

import numpy as np

from fmnist_mlp.core import cli, files
from fmnist_mlp.core.data import load_split
from fmnist_mlp.core.errors import ConfigError
from fmnist_mlp.core.params import load_section
from fmnist_mlp.landscape import figures
from fmnist_mlp.landscape.plane import (
    LandscapeConfig,
    fit_plane,
    grid_axes,
    loss_grid,
    trajectory_fit,
)
from fmnist_mlp.numpy_mlp.scratch import load_model, load_trajectory, require_memory

PLANE_NAMES = {"pca": "PCA", "random": "random filter-normalised", "mean": "trajectory's mean",
               "final": "final weights"}


def main(prepared_dir: Path, scratch_dir: Path, out_npz: Path, metrics_json: Path,
         report_json: Path, plots_dir: Path) -> None:
    cfg = load_section(LandscapeConfig)
    train = load_split(prepared_dir, "train")
    if cfg.samples > len(train.X):
        raise ConfigError(f"{cfg.key('samples')}: expected at most the {len(train.X)} training "
                          f"images, got {cfg.samples}")
    data = train.head(cfg.samples)
    _, spec = load_model(scratch_dir)  # the network the model file holds: its activation too
    trajectory = load_trajectory(scratch_dir, spec)  # (T, P)
    require_memory(spec, copies=4 * len(trajectory) + 4, rows=3 * len(data.X))
    start = time.perf_counter()
    plane = fit_plane(trajectory, spec, cfg.center, cfg.directions,
                      np.random.default_rng(cfg.seed))
    fit = trajectory_fit(plane, trajectory, spec, data.X, data.Y)
    A, B = grid_axes(fit.coords, cfg.grid, cfg.margin)  # (n,), (n,)
    loss, accuracy = loss_grid(plane, spec, data.X, data.Y, A, B, cfg.chunk_mb)  # (n, n) each
    seconds = time.perf_counter() - start
    labels = figures.axis_labels(plane.explained_variance, cfg.directions)
    title = (f"Cross-entropy on {len(data.X)} training images\n"
             f"{PLANE_NAMES[cfg.directions]} plane through the {PLANE_NAMES[cfg.center]}")
    outs = (out_npz, metrics_json, report_json, plots_dir / "landscape_surface.png",
            plots_dir / "landscape_contour.png")
    with files.outputs(*outs):
        out_npz.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out_npz, a=A, b=B, loss=loss, accuracy=accuracy, coords=fit.coords,
                 true_loss=fit.true_loss, plane_loss=fit.plane_loss, off_plane=fit.off_plane,
                 explained_variance=plane.explained_variance)
        files.write_json(metrics_json, {
            "plane_variance": float(plane.explained_variance.sum()),  # of the trajectory's
            "loss_min": float(loss.min()),
        })
        files.write_json(report_json, {
            "explained_variance": plane.explained_variance.tolist(),
            "loss_min": float(loss.min()),
            "loss_max": float(loss.max()),
            "trajectory_gap": float(np.abs(fit.true_loss - fit.plane_loss).max()),
            "off_plane": float(fit.off_plane.max()),
            "grid_points": int(loss.size),
            "samples": len(data.X),
        })
        figures.surface(plots_dir / "landscape_surface.png", A, B, loss, fit.coords,
                         fit.plane_loss, labels)
        figures.contour(plots_dir / "landscape_contour.png", A, B, loss, fit.coords, labels,
                         title)
    files.record_timing("landscape", plane_and_grid=seconds)
    cli.log("landscape", f"{loss.size} grid points in {seconds:.2f} s; loss "
                         f"{loss.min():.3f}..{loss.max():.3f}; trajectory gap "
                         f"{np.abs(fit.true_loss - fit.plane_loss).max():.3f}")


if __name__ == "__main__":
    cli.run(main, __doc__)
