"""The prepare stage's work (fmnist_mlp/dataset/prepare.py) on small raw files written as fetch
leaves them: the stratified, seeded split and subset, the normalisation, the splits' size
limits, a label out of range."""

import numpy as np
import pytest

from fmnist_mlp.core.errors import ConfigError, DataError


def write_raw(raw_dir, prefix, images, labels):
    """``prefix``'s IDX files (images, labels) as the fetch stage leaves them."""
    from fmnist_mlp.dataset.idx import to_idx

    (raw_dir / f"{prefix}-images-idx3-ubyte").write_bytes(to_idx(images))
    (raw_dir / f"{prefix}-labels-idx1-ubyte").write_bytes(to_idx(labels))


def test_prepare_stratifies_and_normalises(tmp_path):
    """200 training images, 20 a class, the last pixel holding the label: the validation split
    (a quarter) holds 5 of each class; x / 255 - 0.5 exactly; one-hot rows match the labels."""
    from fmnist_mlp.dataset.prepare import prepare

    labels = np.repeat(np.arange(10, dtype=np.uint8), 20)  # (200,) sorted: unstratified fails
    images = np.zeros((200, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(200) % 256
    images[:, 27, 27] = labels
    for prefix, n in (("train", 200), ("t10k", 20)):
        write_raw(tmp_path, prefix, images[:n], labels[:n])
    splits = prepare(tmp_path, scale=255.0, offset=-0.5, val_fraction=0.25, seed=3)
    val = splits["val"]
    assert np.bincount(val.labels, minlength=10).tolist() == [5] * 10
    assert np.bincount(splits["train"].labels, minlength=10).tolist() == [15] * 10
    first = (val.X[:, 0] + 0.5) * 255  # (50,) the image indices back
    assert np.allclose(first, np.round(first)) and set(np.round(first).astype(int)) <= set(
        range(200))
    expected = labels[np.round(first).astype(int)].astype(np.float32) / np.float32(255) - 0.5
    np.testing.assert_array_equal(val.X[:, -1], expected.astype(np.float32))
    assert val.X.dtype == np.float32 and val.X.min() == np.float32(-0.5)
    np.testing.assert_array_equal(val.Y.argmax(axis=1), labels[np.round(first).astype(int)])
    assert val.Y.dtype == np.float32
    test = splits["test"]  # untouched, in file order
    np.testing.assert_array_equal(test.X[:, 0], (np.arange(20) / np.float32(255) - np.float32(0.5))
                                  .astype(np.float32))
    np.testing.assert_array_equal(test.labels, labels[:20])
    again = prepare(tmp_path, scale=255.0, offset=-0.5, val_fraction=0.25, seed=3)
    other = prepare(tmp_path, scale=255.0, offset=-0.5, val_fraction=0.25, seed=4)
    np.testing.assert_array_equal(again["val"].X, val.X)  # the seed decides the split
    assert not np.array_equal(other["val"].X, val.X)
    small = prepare(tmp_path, scale=255.0, offset=-0.5, val_fraction=0.25, seed=3, subset=100)
    assert len(small["train"].labels) == 75 and len(small["val"].labels) == 25


def test_a_subset_is_a_seeded_stratified_sample(tmp_path):
    """prepare.subset 100 of 200 images (20 a class): 10 of each class, the same for the same
    seed and not for another; the split after it takes val_fraction of it (0.2 here, not
    scikit-learn's default 0.25); a subset of every image is no subset; one that leaves fewer
    than 10 out is refused in one line."""
    from fmnist_mlp.dataset.prepare import prepare

    labels = np.repeat(np.arange(10, dtype=np.uint8), 20)  # (200,)
    images = np.zeros((200, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(200)  # each image's index
    for prefix in ("train", "t10k"):
        write_raw(tmp_path, prefix, images, labels)

    def drawn(seed, subset):
        s = prepare(tmp_path, scale=1.0, offset=0.0, val_fraction=0.2, seed=seed, subset=subset)
        return s, np.sort(np.concatenate([s["train"].X[:, 0], s["val"].X[:, 0]]).astype(int))

    splits, kept = drawn(3, 100)
    assert len(kept) == 100 and len(splits["val"].labels) == 20
    assert np.bincount(labels[kept], minlength=10).tolist() == [10] * 10
    np.testing.assert_array_equal(drawn(3, 100)[1], kept)
    assert not np.array_equal(drawn(4, 100)[1], kept)
    whole, everything = drawn(3, 200)
    np.testing.assert_array_equal(everything, np.arange(200))
    assert len(whole["val"].labels) == 40
    with pytest.raises(ConfigError, match="prepare.subset: expected at most 190"):
        drawn(3, 195)


@pytest.mark.parametrize("subset, fraction, error", [
    (90, 0.2, None),  # leaves 10 out, one of each class
    (91, 0.2, "prepare.subset: expected at most 90"),
    (None, 0.1, None),  # 10 for the validation split, 90 for training
    (100, 0.2, None),  # the whole set: nothing left out to check
    (None, 0.09, "leaves 9 for the val split"),
    (None, 0.91, "leaves 9 for the train split"),
    (None, 0.9, None),
])
def test_split_sizes_at_their_limits(subset, fraction, error):
    """100 images, 10 classes: each split, and what a subset leaves out, needs 10 images."""
    from fmnist_mlp.dataset.prepare import check_split_sizes

    if error is None:
        check_split_sizes(100, subset, fraction)
    else:
        with pytest.raises(ConfigError, match=error):
            check_split_sizes(100, subset, fraction)


def test_a_label_of_10_is_out_of_range(tmp_path):
    from fmnist_mlp.dataset.prepare import read_raw

    images = np.zeros((2, 28, 28), np.uint8)
    write_raw(tmp_path, "t", images, np.array([9, 9], np.uint8))
    assert read_raw(tmp_path, "t")[1].tolist() == [9, 9]
    write_raw(tmp_path, "t", images, np.array([9, 10], np.uint8))
    with pytest.raises(DataError, match="label 10 out of range"):
        read_raw(tmp_path, "t")
