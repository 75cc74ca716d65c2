"""The papers' networks as plain ``torch.nn.Module``s, with parameter names init rules can target.

- :func:`mlp`: ``nn.Sequential`` of ``Linear`` and activation modules (Glorot & Bengio 2010).
- :func:`deep_autoencoder`: encoder, linear code layer, mirrored decoder (Hinton &
  Salakhutdinov 2006; Sutskever et al. 2013), with ``.curves()``, ``.mnist()``, ``.faces()``.
- :class:`DeepLinear` / :func:`deep_linear`: f(x) = alpha W_L ... W_1 x (Hu et al. 2020).
- :class:`TanhRNN`: h_t = tanh(W_ih x_t + W_hh h_{t-1} + b_h), y_t = W_ho h_t + b_o
  (Sutskever et al. 2013), with a hand-written BPTT fast path.

Registry: ``get(name)`` / ``available()``.

Examples:

>>> import inertia
>>> inertia.models.get("mlp") is inertia.models.mlp
True
>>> inertia.models.get("deep_autoencoder_curves")()[0]
Linear(in_features=784, out_features=400, bias=True)
"""

from collections.abc import Callable

from torch import nn

from .._registry import Registry
from .feedforward import (
    ACTIVATIONS,
    CURVES_SIZES,
    FACES_SIZES,
    MNIST_SIZES,
    DeepLinear,
    ScaledLinear,
    _curves_autoencoder,
    _faces_autoencoder,
    _mnist_autoencoder,
    activation_module,
    deep_autoencoder,
    deep_linear,
    mlp,
    replace_modules,
)
from .rnn import TanhRNN, tanh_recurrence

REGISTRY: Registry[Callable[..., nn.Module]] = Registry("model")
_MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "deep_autoencoder": deep_autoencoder,
    "deep_autoencoder_curves": _curves_autoencoder,  # deep_autoencoder.curves
    "deep_autoencoder_mnist": _mnist_autoencoder,
    "deep_autoencoder_faces": _faces_autoencoder,
    "deep_linear": deep_linear,
    "tanh_rnn": TanhRNN,
}
for _name, _fn in _MODELS.items():
    REGISTRY.register(_name, _fn)
del _name, _fn, _MODELS

get = REGISTRY.get  # unknown names raise ValueError listing the known ones
available = REGISTRY.available

__all__ = [
    "mlp",
    "deep_autoencoder",
    "deep_linear",
    "DeepLinear",
    "ScaledLinear",
    "TanhRNN",
    "tanh_recurrence",
    "activation_module",
    "replace_modules",
    "ACTIVATIONS",
    "CURVES_SIZES",
    "MNIST_SIZES",
    "FACES_SIZES",
    "get",
    "available",
    "REGISTRY",
]
