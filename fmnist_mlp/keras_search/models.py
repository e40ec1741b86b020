"""The Keras twin of the MLP, as its spec says: Sequential Dense layers with the spec's
activation and L2 on the spec's kernels, softmax output.

Imported only by stages, benches and tests that need TensorFlow.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from fmnist_mlp.core.errors import DataError  # noqa: E402
from fmnist_mlp.network.spec import MLPSpec  # noqa: E402


def build_mlp(spec: MLPSpec, l2: float, learning_rate: float,
              steps_per_execution: int = 1) -> keras.Sequential:
    """Compiled Sequential MLP of ``spec``: hidden layers with its activation and an l2 kernel
    regulariser, a softmax output (regularised too if ``spec.l2_output``, the scratch MLP's
    objective; the seed's Problem 2 regularises the hidden kernels only), plain SGD on
    categorical cross-entropy. The dtype is ``keras.config.floatx()``."""
    hidden = [
        keras.layers.Dense(n, activation=spec.act.keras,
                           kernel_regularizer=keras.regularizers.l2(l2), name=f"hidden_{i}")
        for i, n in enumerate(spec.hidden, start=1)
    ]
    model = keras.Sequential([  # fixed names: Keras' counters would differ from model to model
        keras.Input(shape=(spec.n_in,), name="images"),
        *hidden,
        keras.layers.Dense(spec.n_out, activation="softmax",
                           kernel_regularizer=keras.regularizers.l2(l2) if spec.l2_output
                           else None, name="output"),
    ], name="mlp")
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate, name="sgd")
    model.compile(optimizer=optimizer,
                  loss="categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    return model


def deterministic(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and ask TF for deterministic ops."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _renumber_shared_objects(config: bytes) -> bytes:
    ids: dict[bytes, int] = {}

    def number(match: re.Match) -> bytes:
        return b'"shared_object_id": %d' % ids.setdefault(match[1], len(ids))

    return re.sub(rb'"shared_object_id": (\d+)', number, config)


ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry


def save_model(model: keras.Model, path: str | Path) -> None:
    """``model.save(path)`` made the same bytes for the same model: Keras writes ``date_saved``
    into metadata.json, the clock into the weights entry's zip header and Python object ids as
    config.json's ``shared_object_id`` (renumbered here in order of appearance, which keeps what
    they share). The file still loads with ``keras.models.load_model``."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(path, "w") as dst:
            for info in src.infolist():
                data = src.read(info.filename)
                if info.filename == "metadata.json":
                    metadata = json.loads(data)
                    metadata.pop("date_saved", None)
                    data = json.dumps(metadata, sort_keys=True).encode()
                elif info.filename == "config.json":
                    data = _renumber_shared_objects(data)
                dst.writestr(zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH), data,
                             compress_type=info.compress_type)
    finally:
        tmp.unlink(missing_ok=True)


def model_spec(model: keras.Model, activation: str) -> MLPSpec:
    """The spec of a Sequential MLP as build_mlp makes it, read off its layers (``activation``
    if it has no hidden layer)."""
    *hidden, output = [layer.get_config() for layer in model.layers]
    activations = {c["activation"] for c in hidden} or {activation}
    if len(activations) != 1 or output["activation"] != "softmax":
        raise ValueError(f"activations {sorted(activations)} then {output['activation']}")
    return MLPSpec(int(model.input_shape[-1]), tuple(c["units"] for c in hidden),
                   output["units"], activations.pop(), output["kernel_regularizer"] is not None)


def load_model(path: str | Path, expected: MLPSpec) -> keras.Model:
    """``keras.models.load_model`` of a model of network ``expected``; DataError naming the file
    if it is missing or corrupt, or naming both specs if it holds another network."""
    try:
        model = keras.models.load_model(path)
        spec = model_spec(model, expected.activation)
    except Exception as e:  # Keras raises ValueError, OSError, zipfile and h5py errors alike
        problem = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DataError(f"{path}: cannot load the Keras model ({type(e).__name__}: {problem}); "
                        f"run `dvc repro select`") from None
    expected.require(spec, str(path))
    return model
