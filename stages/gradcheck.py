"""gradcheck: numerical check of the scratch MLP's gradient at its initial weights, L2 included.

Exits non-zero when relative_error exceeds gradcheck.tolerance. METRICS_JSON holds the headline,
log10 of the relative error (-8 reads "agrees to 8 digits"; DVC would print 1e-8 as 0.0),
REPORT_JSON the details: check_grad, per-layer errors, parameter and kink counts.
"""

import fmnist_mlp.core.startup  # noqa: F401  (first: the numeric profile before numpy)

from pathlib import Path

import numpy as np

from fmnist_mlp.core import cli, files
from fmnist_mlp.core.data import load_split
from fmnist_mlp.core.errors import StudyError
from fmnist_mlp.core.params import load_section
from fmnist_mlp.gradcheck.check import GradcheckConfig, check_gradient, log10_error
from fmnist_mlp.numpy_mlp.scratch import ScratchConfig, initial_params, require_memory


def main(prepared_dir: Path, metrics_json: Path, report_json: Path) -> None:
    model, cfg = load_section(ScratchConfig), load_section(GradcheckConfig)
    batch = load_split(prepared_dir, "train").head(cfg.samples)
    spec = model.spec(batch)
    require_memory(spec, copies=10, rows=len(batch.X))
    result = check_gradient(initial_params(model, spec), batch.X, batch.Y, spec, model.l2,
                            cfg.epsilon)
    report = {
        "check_grad": result.check_grad,
        "relative_error": result.relative_error,
        "max_layer_relative_error": result.max_layer_relative_error,
        "layer_relative_errors": list(result.layer_relative_errors),
        "num_params": result.num_params,
        "kinks": result.kinks,
        "relative_error_with_kinks": result.relative_error_with_kinks,
        "samples": len(batch.X),
    }
    kinks = (f"{result.kinks} left out: their step crosses a {spec.activation} kink"
             if spec.act.kinks else f"{spec.activation} has no kinks")
    cli.log("gradcheck", f"check_grad {result.check_grad:.3g}, relative_error "
                         f"{result.relative_error:.3g} over {result.num_params - result.kinks} "
                         f"parameters ({kinks}), {len(batch.X)} samples, {spec.describe()}")
    if not np.isfinite(result.relative_error) or result.relative_error > cfg.tolerance:
        cause = (f"a central difference with gradcheck.epsilon {cfg.epsilon:g} errs by "
                 f"O(epsilon^2): lower it before concluding that the gradient is wrong"
                 if cfg.epsilon > 1e-5 else "the gradient is wrong")
        raise StudyError(f"relative_error {result.relative_error:.3g} over the "
                         f"{result.num_params - result.kinks} parameters whose steps cross no "
                         f"{spec.activation} kink exceeds gradcheck.tolerance "
                         f"{cfg.tolerance:.3g}: {cause}")
    with files.outputs(metrics_json, report_json):
        files.write_json(metrics_json,
                         {"log10_grad_error": log10_error(result.relative_error)})
        files.write_json(report_json, report)


if __name__ == "__main__":
    cli.run(main, __doc__)
