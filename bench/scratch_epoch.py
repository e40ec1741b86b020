"""Seconds per epoch of the scratch SGD under the numeric profile (what train_scratch runs: AVX2
kernels, one BLAS thread, the same bits on any x86-64 CPU) beside the same float32 SGD with this
machine's defaults (its widest kernels, all cores) and beside Keras, same architecture, batch,
learning rate and training split, measured in one run. Each side runs in its own process, since
the profile must be set before numpy loads. Needs data/prepared (``dvc repro prepare``).

Usage: python -m bench.scratch_epoch [EPOCHS]
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from fmnist_mlp.core import numerics

ROOT = Path(__file__).resolve().parents[1]
SIDES = {  # name: (environment, what runs)
    "profile": (numerics.PROFILE, "scratch"),
    "machine default": ({}, "scratch"),
    "keras (profile)": (numerics.PROFILE, "keras"),
}


def worker(what: str, epochs: int) -> list[float]:
    """Seconds of each epoch after the first (which includes tracing / warm-up)."""
    import time

    import numpy as np

    from fmnist_mlp.core.data import load_split
    from fmnist_mlp.core.params import load_section
    from fmnist_mlp.numpy_mlp.scratch import ScratchConfig, initial_params
    from fmnist_mlp.sgd.minibatch import sgd

    cfg = load_section(ScratchConfig)
    train = load_split(ROOT / "data/prepared", "train")
    spec = cfg.spec(train)
    if what == "scratch":
        result = sgd(initial_params(cfg, spec), train.X.astype(cfg.dtype), train.Y, spec,
                     epochs=epochs + 1, batch_size=cfg.batch_size,
                     learning_rate=cfg.learning_rate, l2=cfg.l2, rng=np.random.default_rng(0),
                     progress=False)
        return result.history.seconds[1:]
    import keras

    from fmnist_mlp.keras_search.models import build_mlp

    class Timer(keras.callbacks.Callback):
        seconds: list = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    model = build_mlp(spec, cfg.l2, cfg.learning_rate)  # L2 on every kernel, as the scratch MLP
    timer = Timer()
    model.fit(train.X, train.Y, batch_size=cfg.batch_size, epochs=epochs + 1, shuffle=True,
              verbose=0, callbacks=[timer])
    return timer.seconds[1:]


def run_side(name: str, epochs: int) -> float:
    env, what = SIDES[name]
    environ = {**numerics.outer_environ, **env, "PYTHONPATH": str(ROOT),
               "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, __file__, "--worker", what, str(epochs)], env=environ,
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    seconds = json.loads(out.splitlines()[-1])
    return sorted(seconds)[len(seconds) // 2]


def main(epochs: int = 5) -> None:
    from fmnist_mlp.core.params import load_section
    from fmnist_mlp.numpy_mlp.scratch import ScratchConfig

    cfg = load_section(ScratchConfig)
    times = {name: run_side(name, epochs) for name in SIDES}
    print(f"scratch MLP hidden {list(cfg.hidden)}, {cfg.dtype}, batch {cfg.batch_size}: median "
          f"of {epochs} epochs after a warm-up epoch, {os.cpu_count()} cores")
    for name, seconds in times.items():
        print(f"  {name:<16} {seconds:.3f} s/epoch")
    base = times["machine default"]
    print(f"profile / machine default: {times['profile'] / base:.2f}x (target <= 1.6x)")
    print(f"keras / profile: {times['keras (profile)'] / times['profile']:.1f}x")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        print(json.dumps(worker(sys.argv[2], int(sys.argv[3]))))
    else:
        main(*map(int, sys.argv[1:]))
