"""Small plain-torch versions of the families people train (nothing downloaded; torchvision does
not import with this torch build): each a few thousand to a few hundred thousand parameters, with
a batch it takes and a loss. ``ZOO`` maps a name to a builder ``() -> (model, inputs, targets, loss)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)  # one module, used twice (as torchvision's)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.fc = nn.Linear(32, classes)
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)
        self.act, self.gate = nn.ReLU(), nn.Hardsigmoid()

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class MobileNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1, bias=False),
            nn.BatchNorm2d(16),
            nn.Hardswish(),
            nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False),  # depthwise
            nn.BatchNorm2d(16),
            nn.Hardswish(),
            SqueezeExcite(16),
            nn.Conv2d(16, 32, 1, groups=2, bias=False),  # grouped pointwise
            nn.BatchNorm2d(32),
        )
        self.head = nn.Linear(32, classes)

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def vgg():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 128),  # the large linear head
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 10),
    )


class Conv1D(nn.Module):
    """Hugging Face's GPT-2 Conv1D: a linear layer whose weight is stored as [in, out]."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf).normal_(0, 0.02))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], -1)


class GPT(nn.Module):
    def __init__(self, vocab: int = 50, d: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d, padding_idx=0)
        self.pos = nn.Embedding(16, d)
        enc = nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.1, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(enc, layers, enable_nested_tensor=False)
        self.mlp = Conv1D(d, d)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied

    def forward(self, ids):
        t = ids.shape[1]
        mask = torch.triu(torch.full((t, t), float("-inf")), 1)
        h = self.tok(ids) + self.pos(torch.arange(t))
        h = self.blocks(h, mask=mask, is_causal=True)
        return self.head(self.ln(h + self.mlp(h)))


class BERT(nn.Module):
    def __init__(self, vocab: int = 50, d: int = 32) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d, padding_idx=0)
        enc = nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.1, activation="gelu", batch_first=True)
        self.enc = nn.TransformerEncoder(enc, 2, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(d)
        self.cls = nn.Linear(d, 3)

    def forward(self, ids):
        return self.cls(self.ln(self.enc(self.tok(ids)))[:, 0])


class RNNLM(nn.Module):
    def __init__(self, cell: type[nn.Module], vocab: int = 40, d: int = 24) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.rnn = cell(d, d, num_layers=2, batch_first=True)
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        return self.head(self.rnn(self.emb(ids))[0])


def decoder():
    return nn.Sequential(
        nn.Linear(8, 16 * 4 * 4),
        nn.Unflatten(1, (16, 4, 4)),
        nn.ConvTranspose2d(16, 8, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(8, 1, 4, 2, 1),
        nn.Sigmoid(),
    )


def conv1d_net():
    return nn.Sequential(
        nn.Conv1d(2, 8, 5, padding=2),
        nn.ReLU(),
        nn.Conv1d(8, 8, 5, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.LazyLinear(4),
    )


def conv3d_net():
    return nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 3)
    )


def _lm_loss(out, y):
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n=8, c=3, s=16, classes=10):
    g = _g()
    return torch.randn(n, c, s, s, generator=g), torch.randint(0, classes, (n,), generator=g)


def _tokens(n=4, t=12, vocab=50):
    ids = torch.randint(1, vocab, (n, t), generator=_g())
    return ids, torch.roll(ids, -1, 1)


def _build_conv1d():
    m = conv1d_net()
    x = torch.randn(8, 2, 32, generator=_g())
    m(x)  # materialize the lazy layer
    return m, x, torch.randint(0, 4, (8,), generator=_g()), F.cross_entropy


ZOO: dict[str, Callable[[], tuple]] = {
    "resnet": lambda: (ResNet(), *_images(), F.cross_entropy),
    "mobilenet": lambda: (MobileNet(), *_images(), F.cross_entropy),
    "vgg": lambda: (vgg(), *_images(), F.cross_entropy),
    "gpt": lambda: (GPT(), *_tokens(), _lm_loss),
    "bert": lambda: (BERT(), _tokens()[0], torch.randint(0, 3, (4,), generator=_g()), F.cross_entropy),
    "lstm": lambda: (RNNLM(nn.LSTM), *_tokens(vocab=40), _lm_loss),
    "gru": lambda: (RNNLM(nn.GRU), *_tokens(vocab=40), _lm_loss),
    "decoder": lambda: (
        decoder(),
        torch.randn(8, 8, generator=_g()),
        torch.rand(8, 1, 16, 16, generator=_g()),
        F.mse_loss,
    ),
    "conv1d": _build_conv1d,
    "conv3d": lambda: (
        conv3d_net(),
        torch.randn(4, 1, 6, 6, 6, generator=_g()),
        torch.randint(0, 3, (4,), generator=_g()),
        F.cross_entropy,
    ),
}
