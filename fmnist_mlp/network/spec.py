"""The network, one spec that every part asks: the numpy MLP and its gradient, the gradient
check, SGD, the Keras twin, the landscape evaluator and the model files.

``MLPSpec`` (as nanoGPT's ``GPTConfig``) holds the layer widths, the hidden activation and which
kernels carry the L2 penalty; it is built from params in one place per model
(``ScratchConfig.spec``, ``Trial.spec``) and saved inside every model file. A new activation is
one entry of ``ACTIVATIONS``: its function, its derivative, its Keras name and whether it has
kinks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from fmnist_mlp.core.errors import ConfigError, DataError


def num_params(sizes: tuple[int, ...]) -> int:
    """Weights and biases of an MLP of layer widths ``sizes``: the length of theta."""
    return sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


@dataclass(frozen=True)
class Activation:
    """A hidden layer's activation f, elementwise."""

    name: str
    apply: Callable[[np.ndarray], np.ndarray]  # z -> f(z), written over z (float arrays)
    derivative: Callable[[np.ndarray], np.ndarray]  # a = f(z) -> f'(z), as a factor of delta
    keras: str  # the same function's name in keras.activations
    kinks: bool  # f' jumps somewhere: a finite difference across a jump is no derivative


class Relu:
    """max(z, 0) in place, against a zero array of z's shape rather than the scalar 0: numpy's
    SIMD loop only takes two contiguous operands (~3.5x faster in the landscape's tiles); the
    same values either way. Each instance keeps its zeros per dtype, made on the first call and
    grown for a bigger array; they are only read, so threads may share them."""

    def __init__(self) -> None:
        self.zeros: dict[np.dtype, np.ndarray] = {}

    def __call__(self, z: np.ndarray) -> np.ndarray:
        zeros = self.zeros.get(z.dtype)
        if zeros is None or zeros.size < z.size:
            zeros = self.zeros[z.dtype] = np.zeros(z.size, dtype=z.dtype)
        return np.maximum(z, zeros[:z.size].reshape(z.shape), out=z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) = (1 + tanh(z / 2)) / 2 in place: no overflow for any z."""
    z *= 0.5
    np.tanh(z, out=z)
    z += 1.0
    z *= 0.5
    return z


ACTIVATIONS = {  # a new activation: one entry here
    "relu": Activation("relu", Relu(), lambda a: a > 0, "relu", kinks=True),
    "tanh": Activation("tanh", lambda z: np.tanh(z, out=z), lambda a: 1.0 - a * a, "tanh",
                       kinks=False),
    "sigmoid": Activation("sigmoid", _sigmoid, lambda a: a * (1.0 - a), "sigmoid",
                          kinks=False),
}


def check_activation(name: str, key: str) -> str:
    """``name`` if it is a known activation, else ConfigError naming ``key``."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"{key}: unknown activation {name!r} (known: "
                          f"{', '.join(sorted(ACTIVATIONS))})")
    return name


@dataclass(frozen=True)
class MLPSpec:
    """A multilayer perceptron: ``n_in`` inputs, hidden layers of widths ``hidden`` with
    ``activation``, a softmax over ``n_out`` classes; L2 on every hidden kernel, and on the output
    kernel too if ``l2_output`` (the scratch objective; the seed's Keras models: no). Biases never
    carry L2."""

    n_in: int
    hidden: tuple[int, ...]
    n_out: int
    activation: str
    l2_output: bool

    def __post_init__(self) -> None:
        check_activation(self.activation, "activation")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    @property
    def sizes(self) -> tuple[int, ...]:
        """(n_in, h_1, ..., h_k, n_out): the layer widths, which fix theta's layout."""
        return (self.n_in, *self.hidden, self.n_out)

    @property
    def act(self) -> Activation:
        return ACTIVATIONS[self.activation]

    @property
    def num_params(self) -> int:
        return num_params(self.sizes)

    def describe(self) -> str:
        """``784-10-10-10-10 relu, L2 on every kernel``."""
        where = "every kernel" if self.l2_output else "the hidden kernels"
        return f"{'-'.join(map(str, self.sizes))} {self.activation}, L2 on {where}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> MLPSpec:
        """The spec a model file carries; DataError naming ``where`` if it is not one."""
        try:
            raw = json.loads(text)
            return cls(int(raw["n_in"]), tuple(raw["hidden"]), int(raw["n_out"]),
                       str(raw["activation"]), bool(raw["l2_output"]))
        except (ValueError, KeyError, TypeError, ConfigError) as e:
            raise DataError(f"{where}: no valid network spec ({type(e).__name__}: {e})") from None

    def require(self, other: MLPSpec, where: str) -> None:
        """DataError naming both specs unless ``other`` (what a file holds) is this one."""
        if other != self:
            raise DataError(f"{where}: holds a {other.describe()} network, expected "
                            f"{self.describe()}")
