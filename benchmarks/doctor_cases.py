"""The cases of the doctor's verdict benchmark: (model, data, init, optimizer) a user could bring.

Each case is built from its name alone (deterministic: every random draw comes from a generator
seeded by the case), so a cached outcome can be matched to its case by name and spec. Families:

- ``glorot``: Glorot & Bengio (2010): sigmoid / tanh / softsign MLPs of 2-8 hidden layers, the
  standard init U[-1/sqrt(n), 1/sqrt(n)] (their eq. 1) vs the normalized init (eq. 16);
- ``hu``: Hu, Xiao & Pennington (2020): deep linear nets, Gaussian vs orthogonal, across width
  and depth, on a linear regression;
- ``sutskever``: Sutskever et al. (2013): tanh RNNs on the addition task with recurrent spectral
  radius 0.5 to 3, and sparse init (15 nonzeros per unit) at several scales;
- ``temperoni``: Temperoni et al. (2020): weights N(0, s^2) with s from 1e-5 to 1;
- ``lr``: learning rates from far too small to far too large for SGD, CM and NAG;
- ``momentum``: momenta 0.5 to 0.999 with and without Nesterov;
- ``zoo``: BatchNorm residual convnets, depthwise (MobileNet-style) convnets, a small transformer,
  LSTM and GRU models, at the recipes people use and at broken ones (lr 100x the recipe, a tiny
  lr, all-zero init, dead ReLUs from a large negative bias, huge init without normalization).

The split (``tune`` / ``held_out``) is fixed by a hash of the name, before any outcome is seen.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import inertia.init as I
from inertia.data import rnn_task

N_EXAMPLES = 256
N_CLASSES = 10
D_IN = 32


@dataclass(frozen=True)
class Case:
    """One benchmark case. ``optimizer`` is ``(kind, lr, momentum)`` with kind sgd, cm or nag."""

    name: str
    family: str
    build: Callable[[], tuple] = field(compare=False, repr=False)  # -> (model, inputs, targets, loss_fn)
    optimizer: tuple[str, float, float]
    steps: int = 300

    @property
    def split(self) -> str:
        h = int(hashlib.sha256(self.name.encode()).hexdigest(), 16)
        return "tune" if h % 2 == 0 else "held_out"

    def spec(self) -> str:
        """What the outcome depends on (a cached outcome is reused only for the same spec)."""
        return f"{self.name}|{self.optimizer}|{self.steps}|v2"


def _gen(name: str) -> torch.Generator:
    return torch.Generator().manual_seed(int(hashlib.sha256(name.encode()).hexdigest(), 16) % (2**31))


# -- data ------------------------------------------------------------------------------------------
def teacher_classification(g: torch.Generator, d_in: int = D_IN) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs N(0, 1) and the labels a random 2-layer tanh teacher assigns them (learnable)."""
    x = torch.randn(N_EXAMPLES, d_in, generator=g)
    w1 = torch.randn(d_in, 64, generator=g) / math.sqrt(d_in)
    w2 = torch.randn(64, N_CLASSES, generator=g) / 8.0
    return x, (torch.tanh(x @ w1) @ w2).argmax(1)


def linear_regression(g: torch.Generator, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """y = A x for a random A with singular values in [0.5, 1.5]."""
    q1, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    q2, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    a = q1 @ torch.diag(torch.linspace(0.5, 1.5, d)) @ q2
    x = torch.randn(N_EXAMPLES, d, generator=g)
    return x, x @ a.T


def images(g: torch.Generator, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """3-channel images whose label is set by their channel means and energies (a pooled statistic,
    so a convnet with global average pooling can learn it)."""
    x = torch.randn(N_EXAMPLES, 3, size, size, generator=g)
    x = x + torch.randn(N_EXAMPLES, 3, 1, 1, generator=g)
    feats = torch.cat([x.mean((2, 3)), x.pow(2).mean((2, 3))], 1)
    w = torch.randn(6, N_CLASSES, generator=g)
    return x, (feats @ w).argmax(1)


def markov_tokens(g: torch.Generator, vocab: int = 16, length: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Token sequences from a near-deterministic Markov chain; targets are the next tokens."""
    nxt = torch.randperm(vocab, generator=g)
    seq = torch.empty(N_EXAMPLES // 2, length + 1, dtype=torch.long)
    seq[:, 0] = torch.randint(0, vocab, (seq.shape[0],), generator=g)
    for t in range(length):
        noise = torch.rand(seq.shape[0], generator=g) < 0.1
        rand = torch.randint(0, vocab, (seq.shape[0],), generator=g)
        seq[:, t + 1] = torch.where(noise, rand, nxt[seq[:, t]])
    return seq[:, :-1], seq[:, 1:]


def lm_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


# -- models ----------------------------------------------------------------------------------------
ACTS: dict[str, type[nn.Module] | None] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softsign": nn.Softsign,
    "relu": nn.ReLU,
    "linear": None,
}


def mlp(d_in: int, width: int, depth: int, d_out: int, act: str) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units, then a linear output layer."""
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers.append(nn.Linear(d, width))
        cls = ACTS[act]
        if cls is not None:
            layers.append(cls())
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


def linear_weights(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def init_linear(model: nn.Module, how: str, g: torch.Generator, scale: float = 1.0) -> None:
    """Initialize every Linear of ``model``: ``how`` names the scheme; biases are zero."""
    for m in linear_weights(model):
        w = m.weight
        fan_in, fan_out = w.shape[1], w.shape[0]
        with torch.no_grad():
            if how == "standard":  # Glorot & Bengio's eq. 1
                w.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=g)
            elif how == "normalized":  # their eq. 16
                a = math.sqrt(6 / (fan_in + fan_out))
                w.uniform_(-a, a, generator=g)
            elif how == "he":
                w.normal_(0, math.sqrt(2 / fan_in), generator=g)
            elif how == "gaussian":  # Hu et al.: N(0, 1/fan_in)
                w.normal_(0, 1 / math.sqrt(fan_in), generator=g)
            elif how == "orthogonal":
                I.orthogonal_(w, generator=g)
            elif how == "sparse":  # Martens' 15 nonzeros per unit, N(0, scale^2)
                I.sparse_(w, fan_in=min(15, fan_in), std=scale, generator=g)
            elif how == "scaled":  # N(0, scale^2), absolute
                w.normal_(0, scale, generator=g)
            elif how == "zero":
                w.zero_()
            else:
                raise ValueError(f"unknown init {how!r}")
            m.bias.zero_()


class AdditionRNN(nn.Module):
    """tanh RNN reading the addition task's (value, marker) pairs; predicts the sum at the end."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.rnn = nn.RNN(2, hidden, batch_first=True, nonlinearity="tanh")
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        return self.head(h[:, -1])


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=not norm)
        self.bn1 = nn.BatchNorm2d(c_out) if norm else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=not norm)
        self.bn2 = nn.BatchNorm2d(c_out) if norm else nn.Identity()
        self.relu = nn.ReLU()
        self.down: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out) if norm else nn.Identity()
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.down(x))


class ResNet(nn.Module):
    """A small ResNet: stem, two stages of basic blocks (the second strided), GAP, linear head."""

    def __init__(self, width: int = 16, norm: bool = True) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=not norm), nn.BatchNorm2d(width) if norm else nn.Identity(), nn.ReLU()
        )
        self.layer1 = BasicBlock(width, width, 1, norm)
        self.layer2 = BasicBlock(width, 2 * width, 2, norm)
        self.head = nn.Linear(2 * width, N_CLASSES)
        for m in self.modules():  # torchvision's convention
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer2(self.layer1(self.stem(x))).mean((2, 3)))


class DepthwiseNet(nn.Module):
    """MobileNet-style: pointwise expansion, depthwise 3x3, hardswish, squeeze-excite, projection."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.Hardswish())
        self.expand = nn.Sequential(
            nn.Conv2d(width, 2 * width, 1, bias=False), nn.BatchNorm2d(2 * width), nn.Hardswish()
        )
        self.dw = nn.Sequential(
            nn.Conv2d(2 * width, 2 * width, 3, 2, 1, groups=2 * width, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.Hardswish(),
        )
        self.se = nn.Sequential(
            nn.Linear(2 * width, width // 2), nn.ReLU(), nn.Linear(width // 2, 2 * width), nn.Hardsigmoid()
        )
        self.project = nn.Sequential(nn.Conv2d(2 * width, width, 1, bias=False), nn.BatchNorm2d(width))
        self.head = nn.Linear(width, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dw(self.expand(self.stem(x)))
        h = h * self.se(h.mean((2, 3)))[:, :, None, None]
        return self.head(self.project(h).mean((2, 3)))


class PlainConvNet(nn.Module):
    """Conv-ReLU layers with no normalization, GAP, linear head."""

    def __init__(self, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 3, 1, 1), nn.ReLU()]
            c = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


class TinyTransformer(nn.Module):
    """Token embedding, learned positions, a 2-layer pre-norm TransformerEncoder, tied output head."""

    def __init__(self, vocab: int = 16, d: int = 32, length: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(1, length, d))
        layer = nn.TransformerEncoderLayer(d, 4, 64, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(length), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos[:, : tokens.shape[1]]
        h = self.encoder(h, mask=self.mask[: tokens.shape[1], : tokens.shape[1]], is_causal=True)
        return self.norm(h) @ self.embed.weight.T


class RecurrentLM(nn.Module):
    """Embedding, a 2-layer LSTM or GRU (batch_first), linear head."""

    def __init__(self, cell: str, vocab: int = 16, d: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(d, d, num_layers=2, batch_first=True)
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.embed(tokens))
        return self.head(h)


# -- the families ----------------------------------------------------------------------------------
def _mlp_case(
    name: str,
    family: str,
    act: str,
    depth: int,
    how: str,
    opt: tuple,
    *,
    scale: float = 1.0,
    width: int = 64,
    bias: float = 0.0,
    steps: int = 300,
) -> Case:
    def build() -> tuple:
        g = _gen(name)
        x, y = teacher_classification(g)
        model = mlp(D_IN, width, depth, N_CLASSES, act)
        init_linear(model, how, g, scale)
        if bias:
            with torch.no_grad():
                for m in linear_weights(model)[:-1]:
                    m.bias.fill_(bias)
        return model, x, y, F.cross_entropy

    return Case(name, family, build, opt, steps)


def glorot_cases() -> list[Case]:
    out = []
    for act in ("sigmoid", "tanh", "softsign"):
        for depth in (2, 4, 6, 8):
            for how in ("standard", "normalized"):
                for opt in (("sgd", 0.1, 0.0), ("nag", 0.01, 0.9)):
                    name = f"glorot/{act}-d{depth}-{how}-{opt[0]}"
                    out.append(_mlp_case(name, "glorot", act, depth, how, opt))
    return out


def hu_cases() -> list[Case]:
    out = []
    for width in (16, 64):
        for depth in (4, 16, 32, 64):
            for how in ("gaussian", "orthogonal"):
                name = f"hu/linear-w{width}-d{depth}-{how}"

                def build(name: str = name, width: int = width, depth: int = depth, how: str = how) -> tuple:
                    g = _gen(name)
                    x, y = linear_regression(g, 16)
                    model = mlp(16, width, depth, 16, "linear")
                    init_linear(model, how, g)
                    return model, x, y, F.mse_loss

                out.append(Case(name, "hu", build, ("sgd", 0.01, 0.0)))
    return out


def sutskever_cases() -> list[Case]:
    out = []
    for radius in (0.5, 0.8, 1.1, 1.5, 2.0, 3.0):
        for opt in (("nag", 0.003, 0.9), ("sgd", 0.03, 0.0)):
            name = f"sutskever/addition-radius{radius}-{opt[0]}"

            def build(name: str = name, radius: float = radius) -> tuple:
                g = _gen(name)
                task = rnn_task("addition", N_EXAMPLES, seq_len=20, seed=int(g.initial_seed() % 1000))
                model = AdditionRNN(32)
                with torch.no_grad():
                    I.echo_state_(model.rnn.weight_hh_l0, spectral_radius=radius, generator=g)
                    model.rnn.weight_ih_l0.normal_(0, 0.1, generator=g)
                    model.rnn.bias_ih_l0.zero_()
                    model.rnn.bias_hh_l0.zero_()
                return model, task.inputs, task.targets, F.mse_loss

            out.append(Case(name, "sutskever", build, opt, 300))
    for act in ("tanh", "relu"):
        for scale in (0.03, 0.1, 0.3, 1.0, 3.0):
            name = f"sutskever/sparse-{act}-std{scale}"
            out.append(_mlp_case(name, "sutskever", act, 6, "sparse", ("nag", 0.01, 0.9), scale=scale))
    return out


def temperoni_cases() -> list[Case]:
    out = []
    for act in ("relu", "tanh"):
        for depth in (3, 6):
            for scale in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0):
                name = f"temperoni/{act}-d{depth}-std{scale:g}"
                out.append(_mlp_case(name, "temperoni", act, depth, "scaled", ("cm", 0.01, 0.9), scale=scale))
    return out


def lr_cases() -> list[Case]:
    out = []
    for act, how in (("relu", "he"), ("tanh", "normalized")):
        for lr in (1e-5, 1e-3, 1e-2, 0.1, 1.0, 10.0):
            for kind, mu in (("sgd", 0.0), ("cm", 0.9), ("nag", 0.9), ("nag", 0.99)):
                name = f"lr/{act}-{kind}{mu:g}-lr{lr:g}"
                out.append(_mlp_case(name, "lr", act, 4, how, (kind, lr, mu)))
    return out


def momentum_cases() -> list[Case]:
    out = []
    for mu in (0.5, 0.95, 0.999):
        for lr in (0.01, 0.1, 0.5):
            for kind in ("cm", "nag"):
                name = f"momentum/relu-{kind}{mu:g}-lr{lr:g}"
                out.append(_mlp_case(name, "momentum", "relu", 4, "he", (kind, lr, mu)))
    return out


def _zoo_image(name: str, make: Callable[[], nn.Module], variant: str) -> tuple:
    g = _gen(name)
    torch.manual_seed(int(g.initial_seed() % 1000))  # the modules' own default init draws
    model = make()
    x, y = images(g)
    _break(model, variant, g)
    return model, x, y, F.cross_entropy


def _zoo_tokens(name: str, make: Callable[[], nn.Module], variant: str) -> tuple:
    g = _gen(name)
    torch.manual_seed(int(g.initial_seed() % 1000))
    model = make()
    x, y = markov_tokens(g)
    _break(model, variant, g)
    return model, x, y, lm_loss


def _break(model: nn.Module, variant: str, g: torch.Generator) -> None:
    """The broken variants: all-zero weights, dead ReLUs from a large negative bias, huge init."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if variant == "zero" and p.dim() >= 2:
                p.zero_()
            elif variant == "dead" and n.endswith("bias") and p.dim() == 1 and "bn" not in n and "norm" not in n:
                p.fill_(-5.0)
            elif variant == "huge" and p.dim() >= 2:
                p.normal_(0, 1.0, generator=g)


ZOO = {
    # family: (builder kind, model factory, recipe (kind, lr, momentum), steps)
    "resnet": ("image", lambda: ResNet(16, norm=True), ("nag", 0.1, 0.9), 100),
    "depthwise": ("image", lambda: DepthwiseNet(16), ("nag", 0.1, 0.9), 100),
    "plainconv": ("image", lambda: PlainConvNet(16, 4), ("nag", 0.01, 0.9), 150),
    "transformer": ("tokens", lambda: TinyTransformer(), ("nag", 0.03, 0.9), 150),
    "lstm": ("tokens", lambda: RecurrentLM("lstm"), ("nag", 0.3, 0.9), 150),
    "gru": ("tokens", lambda: RecurrentLM("gru"), ("nag", 0.3, 0.9), 150),
}
ZOO_VARIANTS = ("recipe", "lr_x100", "lr_x1e-4", "sgd_recipe_lr", "zero", "dead", "huge")


def zoo_cases() -> list[Case]:
    out = []
    for family, (kind, make, (opt, lr, mu), steps) in ZOO.items():
        for variant in ZOO_VARIANTS:
            if variant == "dead" and family in ("transformer", "lstm", "gru", "resnet", "depthwise"):
                continue  # biases feeding ReLUs exist only in the plain convnet (the others use norms / gates)
            name = f"zoo/{family}-{variant}"
            o = {
                "lr_x100": (opt, lr * 100, mu),
                "lr_x1e-4": (opt, lr * 1e-4, mu),
                "sgd_recipe_lr": ("sgd", lr, 0.0),
            }.get(variant, (opt, lr, mu))
            shape = "recipe" if variant in ("lr_x100", "lr_x1e-4", "sgd_recipe_lr") else variant
            maker = _zoo_image if kind == "image" else _zoo_tokens

            for seeded in (name, name + "-seed2") if variant == "recipe" else (name,):  # two seeds of each recipe

                def build(
                    name: str = seeded, make: Callable = make, shape: str = shape, maker: Callable = maker
                ) -> tuple:
                    return maker(name, make, shape)

                out.append(Case(seeded, "zoo", build, o, steps))
    return out


def dead_relu_cases() -> list[Case]:
    out = []
    for depth in (3, 6):
        for bias in (-0.5, -2.0, -5.0):
            name = f"zoo/mlp-relu-d{depth}-bias{bias:g}"
            out.append(_mlp_case(name, "zoo", "relu", depth, "he", ("nag", 0.01, 0.9), bias=bias))
    return out


def all_cases() -> list[Case]:
    cases = (
        glorot_cases()
        + hu_cases()
        + sutskever_cases()
        + temperoni_cases()
        + lr_cases()
        + momentum_cases()
        + zoo_cases()
        + dead_relu_cases()
    )
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def regression_subset(rows: list[dict], n: int = 30, max_steps_cost: int = 300) -> list[str]:
    """A stratified subset of ``n`` held-out case names: strata are (family, trains), each given a
    share of ``n`` proportional to its size (at least one case), cases ordered by a hash of the
    name within a stratum. Only cases of cheap families (no zoo convnet) are eligible, so the
    subset runs in the test suite."""
    eligible = [
        r
        for r in rows
        if r["split"] == "held_out"
        and r["steps"] <= max_steps_cost
        and not r["name"].startswith(("zoo/resnet", "zoo/depthwise", "zoo/plainconv"))
    ]
    strata: dict[tuple, list[dict]] = {}
    for r in eligible:
        strata.setdefault((r["family"], bool(r["trains"])), []).append(r)
    total = len(eligible)
    share = {k: max(1, round(n * len(v) / total)) for k, v in strata.items()}
    while sum(share.values()) > n:  # trim the largest strata first
        k = max(share, key=lambda s: (share[s], s))
        share[k] -= 1
    picked = []
    for k in sorted(strata):
        members = sorted(strata[k], key=lambda r: hashlib.sha256(r["name"].encode()).hexdigest())
        picked += [r["name"] for r in members[: share[k]]]
    return sorted(picked)
