"""evaluate_seeds: the best configuration retrained once per seed, to show the spread of its test
accuracy. Depends on the chosen configuration only (BEST_CONFIG), not on select's model.

Usage: python -m stages.evaluate_seeds PREPARED_DIR BEST_CONFIG METRICS_JSON REPORT_JSON CURVES_DIR
METRICS_JSON: the test accuracy's mean (test_accuracy) and standard deviation (test_accuracy_std)
over evaluate.seeds; REPORT_JSON:
each seed's; CURVES_DIR/seed<S>.csv: each run's per-epoch curves (dvc.yaml's plots). With
evaluate.retrain the runs train on train + val (then the curves have no validation columns).
"""

from pathlib import Path

import numpy as np

from fmnist_mlp import native_log, stage
from fmnist_mlp.config import EvaluateConfig, SearchConfig, load_section
from fmnist_mlp.data import Split, load_split
from fmnist_mlp.metrics import classification_report
from fmnist_mlp.search import read_config


def main(prepared_dir: Path, best_config: Path, metrics_path: Path, report_path: Path,
         curves_dir: Path) -> None:
    cfg, search = load_section(EvaluateConfig), load_section(SearchConfig)
    trial, epochs = read_config(best_config)
    native_log.capture("evaluate_seeds")
    from fmnist_mlp.keras_search import fit, history_rows, log_probs

    train, val = load_split(prepared_dir, "train"), load_split(prepared_dir, "val")
    test = load_split(prepared_dir, "test")
    if cfg.retrain:
        train, val = Split(np.concatenate([train.X, val.X]), np.concatenate([train.Y, val.Y])), None
    accuracy, curves = {}, {}
    for seed in cfg.seeds:
        history = fit(trial, train, val, epochs, seed, search.steps_per_execution)
        curves[seed] = history_rows(history.history, epochs)
        accuracy[seed] = classification_report(log_probs(history.model, test.X),
                                               test.labels)["test_accuracy"]
        stage.log("evaluate_seeds", f"seed {seed}: test accuracy {accuracy[seed]:.4f}")
    values = np.array(list(accuracy.values()))  # (S,)
    with stage.outputs(metrics_path, report_path, curves_dir):
        stage.write_json(metrics_path, {
            "test_accuracy": float(values.mean()),  # over the seeds
            "test_accuracy_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0})
        stage.write_json(report_path, {"config": {**trial.as_dict(), "epochs": epochs},
                                       "test_accuracy": {str(s): a for s, a in accuracy.items()}})
        stage.remove(curves_dir)
        for seed, rows in curves.items():
            stage.write_csv(curves_dir / f"seed{seed}.csv", rows)
    stage.log("evaluate_seeds", f"test accuracy over {len(values)} seeds: {values.mean():.4f} "
                                f"+- {values.std(ddof=1) if len(values) > 1 else 0.0:.4f}")


if __name__ == "__main__":
    stage.run(main, __doc__)
