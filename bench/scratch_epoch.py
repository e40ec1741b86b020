"""Seconds per epoch: the scratch trainer against Keras, same architecture, batch, learning rate and
training split, measured in one run. Needs data/prepared (``dvc repro prepare``).

Usage: python bench/scratch_epoch.py [EPOCHS]
"""

import statistics
import sys
import time

import numpy as np

from fmnist_mlp.config import ScratchConfig, load_section
from fmnist_mlp.data import load_split
from fmnist_mlp.scratch import initial_params, layer_sizes
from fmnist_mlp.sgd import sgd


def scratch_seconds(cfg, sizes, X, Y, epochs):
    result = sgd(initial_params(cfg, sizes), X, Y, sizes, epochs=epochs,
                 batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, l2=cfg.l2,
                 rng=np.random.default_rng(0), progress=False)
    return result.history.seconds


def keras_seconds(cfg, sizes, X, Y, epochs):
    import keras

    from fmnist_mlp.keras_models import build_mlp

    class Timer(keras.callbacks.Callback):
        seconds: list = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    model = build_mlp(sizes, cfg.l2, cfg.learning_rate, regularize_output=True)
    timer = Timer()
    model.fit(X, Y, batch_size=cfg.batch_size, epochs=epochs + 1, shuffle=True, verbose=0,
              callbacks=[timer])
    return timer.seconds[1:]  # the first epoch includes tracing


def main(epochs: int = 5) -> None:
    cfg = load_section(ScratchConfig)
    train = load_split("data/prepared", "train")
    sizes = layer_sizes(cfg, train)
    scratch = scratch_seconds(cfg, sizes, train.X.astype(cfg.dtype), train.Y, epochs)
    keras = keras_seconds(cfg, sizes, train.X, train.Y, epochs)
    s, k = statistics.median(scratch), statistics.median(keras)
    print(f"architecture {sizes}, batch {cfg.batch_size}, {len(train.X)} examples, "
          f"{cfg.dtype}, median of {epochs} epochs")
    print(f"scratch numpy: {s:.3f} s/epoch")
    print(f"keras:         {k:.3f} s/epoch")
    print(f"ratio keras/scratch: {k / s:.1f}x")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
