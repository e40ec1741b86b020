"""A from-scratch multilayer perceptron over one flat parameter vector, as its spec says.

The network is an ``MLPSpec`` (spec.py). Its layer sizes ``spec.sizes = (n_in, h_1, ..., h_k,
n_out)`` fix the layout: layer l has a weight matrix W_l of shape (sizes[l], sizes[l+1]) and a
bias b_l of shape (sizes[l+1],); the flat vector theta stores, layer after layer, W_l row-major
then b_l (``unpack``, ``layer_slices`` take the sizes). Hidden layers apply ``spec.act``; the
output is softmax.

The objective is the mean softmax cross-entropy over the batch plus ``l2 * sum ||W||_F^2`` over
the kernels the spec regularises (biases never), which is what Keras' ``regularizers.l2(l2)``
adds on those kernels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from fmnist_mlp.network.spec import Activation, MLPSpec, num_params

Sizes = tuple[int, ...]


@lru_cache(maxsize=64)
def layer_slices(sizes: Sizes) -> tuple[tuple[slice, slice], ...]:
    """(weight slice, bias slice) of each layer in theta."""
    slices, start = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w_end = start + n_in * n_out
        slices.append((slice(start, w_end), slice(w_end, w_end + n_out)))
        start = w_end + n_out
    return tuple(slices)


@lru_cache(maxsize=64)
def l2_mask(spec: MLPSpec) -> np.ndarray:
    """(P,) bool: True on the kernels that carry L2 (the output's only if spec.l2_output), False
    on biases (read-only, cached)."""
    mask = np.zeros(num_params(spec.sizes), dtype=bool)
    slices = layer_slices(spec.sizes)
    for w, _ in slices if spec.l2_output else slices[:-1]:
        mask[w] = True
    mask.flags.writeable = False
    return mask


def unpack(theta: np.ndarray, sizes: Sizes) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W_l (n_in, n_out), b_l (n_out,))]: views into theta, not copies."""
    if theta.shape != (num_params(sizes),):
        raise ValueError(f"theta has shape {theta.shape}, sizes {sizes} need "
                         f"({num_params(sizes)},)")
    return [(theta[w].reshape(n_in, n_out), theta[b])
            for (w, b), n_in, n_out in zip(layer_slices(sizes), sizes[:-1], sizes[1:])]


def pack(layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Inverse of unpack: one flat vector (P,)."""
    return np.concatenate([np.concatenate([W.ravel(), b.ravel()]) for W, b in layers])


def init_params(spec: MLPSpec, rng: np.random.Generator, bias: float = 0.01) -> np.ndarray:
    """The seed's initialisation: W ~ U(-1/sqrt(n_in), 1/sqrt(n_in)), b = 0.01."""
    layers = []
    for n_in, n_out in zip(spec.sizes[:-1], spec.sizes[1:]):
        bound = 1.0 / np.sqrt(n_in)
        W = rng.uniform(-bound, bound, size=(n_in, n_out))  # (n_in, n_out)
        layers.append((W, np.full(n_out, bias)))
    return pack(layers)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax via logsumexp: finite for any finite logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)  # (..., C)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def forward(theta: np.ndarray, X: np.ndarray, spec: MLPSpec) -> np.ndarray:
    """Logits (B, n_out) of a batch X (B, n_in)."""
    return layer_activations(unpack(theta, spec.sizes), X, spec.act)[-1]


def layer_activations(layers, X: np.ndarray, act: Activation) -> list[np.ndarray]:
    """[X, activations of each hidden layer..., logits]."""
    activations = [X]
    for W, b in layers[:-1]:
        z = activations[-1] @ W  # (B, n_in) @ (n_in, n_out) -> (B, n_out)
        z += b
        activations.append(act.apply(z))
    W, b = layers[-1]
    activations.append(activations[-1] @ W + b)  # (B, h_k) @ (h_k, C) -> (B, C)
    return activations


def cross_entropy(log_probs: np.ndarray, Y: np.ndarray) -> float:
    return float(-np.vdot(Y, log_probs) / len(Y))


def loss_and_grad(theta: np.ndarray, X: np.ndarray, Y: np.ndarray, spec: MLPSpec,
                  l2: float = 0.0) -> tuple[float, np.ndarray]:
    """Objective (mean CE + l2 * sum ||W||^2 over the spec's L2 kernels) and its gradient (P,).

    X (B, n_in), Y (B, C) one-hot (or any rows summing to one). Vectorised over the batch; the
    arithmetic is in theta's dtype.
    """
    layers = unpack(theta, spec.sizes)
    *activations, logits = layer_activations(layers, X, spec.act)
    B = len(X)
    shifted = logits - logits.max(axis=1, keepdims=True)  # (B, C)
    exp = np.exp(shifted)  # (B, C)
    total = exp.sum(axis=1, keepdims=True)  # (B, 1)
    # CE = -sum Y * (shifted - log total) / B, and each row of Y sums to one.
    loss = float((np.log(total).sum() - np.vdot(Y, shifted)) / B)
    grad = np.empty_like(theta)
    grads = unpack(grad, spec.sizes)
    delta = exp / total  # softmax (B, C)
    delta -= Y
    delta /= B  # dJ/dlogits (B, C)
    for l in range(len(layers) - 1, -1, -1):
        W = layers[l][0]
        nabla_w, nabla_b = grads[l]
        np.matmul(activations[l].T, delta, out=nabla_w)  # (n_in, B) @ (B, n_out)
        delta.sum(axis=0, out=nabla_b)  # (n_out,)
        if l > 0:
            delta = delta @ W.T  # (B, n_out) @ (n_out, n_in) -> (B, n_in)
            delta *= spec.act.derivative(activations[l])  # f'(z) from a = f(z)
    if l2:
        weights = theta * l2_mask(spec)  # (P,) biases (and unregularised kernels) zeroed
        loss += l2 * float(np.vdot(weights, weights))
        grad += (2.0 * l2) * weights
    return loss, grad


def predict_log_proba(theta: np.ndarray, X: np.ndarray, spec: MLPSpec) -> np.ndarray:
    return log_softmax(forward(theta, X, spec))  # (N, C)


def evaluate(theta: np.ndarray, X: np.ndarray, Y: np.ndarray,
             spec: MLPSpec) -> tuple[float, float]:
    """(mean cross-entropy without the L2 term, accuracy) on (X, Y)."""
    log_probs = predict_log_proba(theta, X, spec)  # (N, C)
    accuracy = float((log_probs.argmax(axis=1) == Y.argmax(axis=1)).mean())
    return cross_entropy(log_probs, Y), accuracy
