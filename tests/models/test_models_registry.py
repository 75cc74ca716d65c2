"""inertia.models.get(name): every model by the name configs use."""

import pytest
from torch import nn

from inertia import models as M


def test_available_lists_every_model():
    assert M.available() == [
        "deep_autoencoder",
        "deep_autoencoder_curves",
        "deep_autoencoder_faces",
        "deep_autoencoder_mnist",
        "deep_linear",
        "mlp",
        "tanh_rnn",
    ]


def test_names_give_the_factories():
    assert M.get("mlp") is M.mlp and M.get("tanh_rnn") is M.TanhRNN and M.get("deep_linear") is M.deep_linear


def test_paper_autoencoder_names_build_the_papers_architectures():
    first = M.get("deep_autoencoder_curves")()[0]
    assert isinstance(first, nn.Linear) and (first.in_features, first.out_features) == (784, 400)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'cnn'; known: deep_autoencoder"):
        M.get("cnn")
