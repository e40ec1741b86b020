import pytest

from fmnist_mlp import plotting

PNG = b"\x89PNG\r\n\x1a\n"


def test_history_draws_one_panel_per_group(tmp_path):
    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_accuracy": 1 - 1 / e,
             "val_accuracy": 0.9 - 1 / e} for e in range(1, 11)]
    path = tmp_path / "h.png"
    plotting.history(path, rows, [("loss", ["train_loss", "val_loss"]),
                                  ("accuracy", ["train_accuracy", "val_accuracy"])], "t")
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 10_000


def test_history_rejects_a_missing_column(tmp_path):
    with pytest.raises(KeyError, match="val_loss"):
        plotting.history(tmp_path / "h.png", [{"epoch": 1, "train_loss": 1.0}],
                         [("loss", ["train_loss", "val_loss"])], "t")


@pytest.mark.parametrize("values", [[0.86, 0.88, 0.87], [0.5, 0.5], [0.0]])
def test_ranking_draws_close_equal_and_single_values(tmp_path, values):
    path = tmp_path / "r.png"
    plotting.ranking(path, [f"config {i}" for i in range(len(values))], values, "acc", "t")
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5_000
