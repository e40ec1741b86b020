"""gradcheck: numerical check of the scratch MLP's gradient at its initial weights, L2 included.

Usage: python stages/gradcheck.py PREPARED_DIR METRICS_JSON
Exits non-zero when relative_error exceeds gradcheck.tolerance.
"""

import sys
from pathlib import Path

import numpy as np

from fmnist_mlp import stage
from fmnist_mlp.config import GradcheckConfig, ScratchConfig, load_section
from fmnist_mlp.data import load_split
from fmnist_mlp.errors import StudyError
from fmnist_mlp.gradcheck import check_gradient
from fmnist_mlp.scratch import initial_params, layer_sizes


def main(argv: list[str]) -> None:
    prepared_dir, metrics_path = map(Path, argv)
    model, cfg = load_section(ScratchConfig), load_section(GradcheckConfig)
    batch = load_split(prepared_dir, "train").head(cfg.samples)
    sizes = layer_sizes(model, batch)
    result = check_gradient(initial_params(model, sizes), batch.X, batch.Y, sizes, model.l2,
                            cfg.epsilon)
    metrics = {
        "check_grad": result.check_grad,
        "relative_error": result.relative_error,
        "max_layer_relative_error": result.max_layer_relative_error,
        "layer_relative_errors": list(result.layer_relative_errors),
        "num_params": result.num_params,
        "samples": cfg.samples,
    }
    stage.write_json(metrics_path, metrics)
    stage.log("gradcheck", f"check_grad {result.check_grad:.3g}, relative_error "
                           f"{result.relative_error:.3g} over {result.num_params} parameters")
    if not np.isfinite(result.relative_error) or result.relative_error > cfg.tolerance:
        metrics_path.unlink()
        raise StudyError(f"relative_error {result.relative_error:.3g} exceeds "
                         f"gradcheck.tolerance {cfg.tolerance:.3g}: the gradient is wrong")


if __name__ == "__main__":
    stage.run("gradcheck", main, sys.argv[1:])
