"""select: read exactly the current grid's items, rank the configurations by their mean over the
seeds, say what the grid concludes (each axis's effect, the configurations that could be the
best, each one's equivalence to the winner), export the winner.

METRICS_JSON: the winner's mean validation accuracy and loss, its std over the seeds, the p-value
of the paired t-test against the runner-up, the validation accuracy of the seed's protocol's
choice (one run per configuration, the first seed), the size of the possibly-best set and the
largest axis effect with its interval; REPORT_JSON: both choices' configurations, the
possibly-best set and the verdict; RESULTS_CSV and RESULTS_PNG: every configuration with its
interval, MCB bounds and equivalence; BEST_DIR: config.json, history.csv (mean curves) and
model_seed<S>.keras of each seed; OVERLAY_CSV: every item's mean validation accuracy per epoch,
labelled by the axes that vary (one chart, one line per item); EFFECTS_JSON: every estimate of
the factorial model (docs/statistics.md); EFFECTS_CSV: each axis level's effect with its
interval (one chart).
"""

import fmnist_mlp.core.startup  # noqa: F401  (first: the numeric profile before numpy)

from pathlib import Path

from fmnist_mlp.core import cli
from fmnist_mlp.selection.select import select


def main(search_root: Path, curves_root: Path, metrics_json: Path, report_json: Path,
         results_csv: Path, results_png: Path, best_dir: Path, overlay_csv: Path,
         effects_json: Path, effects_csv: Path) -> None:
    select(search_root, curves_root, metrics_json, report_json, results_csv, results_png,
           best_dir, overlay_csv, effects_json, effects_csv)


if __name__ == "__main__":
    cli.run(main, __doc__)
