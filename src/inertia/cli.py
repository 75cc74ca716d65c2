"""The ``inertia`` command line: a thin layer over the library.

Every command validates its input before doing any work. Whatever a user can get wrong (a bad
config, name, value, flag or file) prints one line, ``error: ...``, naming what is wrong and
what is accepted, and exits with code 2; the one place that turns those errors into that line is
:class:`_OneLineErrors`, the command group every command runs in.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import pickle
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from .validation import check_integer, check_number

try:  # typer >= 0.25 carries its own copy of click
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as _click_errors  # type: ignore[no-redef]


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


# Errors raised by what a user gave (config and data files, names, values): reported as one line.
# Other exceptions are bugs and keep their traceback. ConfigError is a ValueError.
USER_ERRORS = (UsageError, ValueError, OSError, OverflowError, MemoryError, EOFError, pickle.UnpicklingError)
MAX_MESSAGE = 2000  # characters of one error line


def _fail(message: str) -> typer.Exit:
    text = " ".join(str(message).split())  # one line, whatever the message held
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + " ..."
    err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False)
    return typer.Exit(code=2)


@contextlib.contextmanager
def _one_line_errors():
    no_args_help = getattr(_click_errors, "NoArgsIsHelpError", ())
    try:
        yield
    except no_args_help:  # `inertia` or `inertia schedules` alone: click prints the help
        raise
    except _click_errors.UsageError as e:  # a bad flag or value, found by click
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        raise _fail(e.format_message() + hint) from None
    except USER_ERRORS as e:
        message = str(e) if isinstance(e, (ValueError, UsageError)) else f"{type(e).__name__}: {e}"
        raise _fail(message or type(e).__name__) from None


def _no_flag_types(command) -> None:
    """Typer >= 0.25 prints a flag's type (``--json <bool>``), which reads as if it took a value:
    flags (and ``--help``) show none."""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False):
            param.metavar = ""
    get_help = getattr(command, "get_help_option", None)
    if get_help is not None and not getattr(get_help, "_no_type", False):

        def get_help_option(ctx, get_help=get_help):
            option = get_help(ctx)
            if option is not None:
                option.metavar = ""
            return option

        get_help_option._no_type = True  # type: ignore[attr-defined]
        command.get_help_option = get_help_option


class _OneLineErrors(TyperGroup):
    """A command group whose parse errors and user errors end as one ``error:`` line, exit 2;
    its commands' flags are shown without a type."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _no_flag_types(self)
        for command in self.commands.values():
            _no_flag_types(command)

    def make_context(self, *args, **kwargs):
        with _one_line_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _one_line_errors():
            return super().invoke(ctx)


app = typer.Typer(
    name="inertia",
    help="Initialization, momentum and diagnostics for deep and recurrent networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_OneLineErrors,
)
schedules_app = typer.Typer(help="Momentum and learning-rate schedules.", no_args_is_help=True, cls=_OneLineErrors)
app.add_typer(schedules_app, name="schedules")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        console.print(f"inertia {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main_options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
):
    """Initialization, momentum and diagnostics for deep and recurrent networks."""


def _parse_overrides(items: list[str]) -> dict:
    from .experiments.config import ConfigError, parse_value

    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. optimizer.lr=0.01)")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def _activation_module(name: str):
    """An activation module by name (for MLPs given as sizes on the command line): torch's own
    (``nn.Tanh``, ...) where there is one, so that the doctor sees saturation and dead units."""
    import torch

    from .init.gain import activation_fn
    from .models.feedforward import ACTIVATIONS

    if name in ACTIVATIONS:
        return ACTIVATIONS[name]()
    fn = activation_fn(name)

    class Activation(torch.nn.Module):
        def forward(self, x):
            return fn(x)

        def extra_repr(self):
            return name

    return Activation()


def build_model_spec(spec: str, activation: str = "tanh"):
    """A model from the command line: ``784-1000-500-30`` (an MLP), a registered model name,
    or ``module.path:factory`` (a callable returning an ``nn.Module``)."""
    if ":" in spec:
        return _factory_model(spec)
    if "-" in spec and all(p.strip().isdigit() for p in spec.split("-")):
        return _mlp_model(spec, activation)
    return _registered_model(spec)


def _factory_model(spec: str):
    """``module.path:factory``: the user's callable, imported with the working directory on the path."""
    import torch

    mod_name, _, attr = spec.partition(":")
    try:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise UsageError(f"cannot load model factory {spec!r}: {e}") from None
    try:
        model = factory()
    except Exception as e:  # the user's code: report, don't crash
        raise UsageError(f"model factory {spec!r} raised {type(e).__name__}: {e}") from None
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"model factory {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _mlp_model(spec: str, activation: str):
    """``784-1000-500-30``: Linear layers with ``activation`` between them."""
    import torch

    from .init.gain import activation_fn

    sizes = [int(p) for p in spec.split("-")]
    if len(sizes) < 2 or min(sizes) < 1:
        raise UsageError(f"MLP sizes must be at least two positive integers, got {spec!r}")
    activation_fn(activation)  # validates the name
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        try:
            layers.append(torch.nn.Linear(a, b))
        except (RuntimeError, OverflowError, TypeError) as e:  # too large to allocate, or for 64 bits
            raise UsageError(f"cannot build the MLP {spec!r}: layer {a}x{b}: {e}") from None
        if i < len(sizes) - 2:
            layers.append(_activation_module(activation))
    return torch.nn.Sequential(*layers)


def _registered_model(spec: str):
    """A model registered under ``spec`` that needs no arguments."""
    from . import models

    try:
        factory = models.get(spec)
    except ValueError as e:
        raise UsageError(f"{e} (or give sizes like 784-1000-500-30, or module.path:factory)") from None
    try:
        return factory()
    except TypeError as e:
        raise UsageError(
            f"model {spec!r} needs arguments ({e}); give sizes like 784-1000-500-30, or module.path:factory"
        ) from None


def _check_parent(path: Path | None, flag: str) -> None:
    """The folder ``path`` will be written into exists (checked before the work that fills it)."""
    if path is not None and not path.parent.is_dir():
        raise UsageError(f"{flag} {str(path)!r}: folder {str(path.parent)!r} does not exist")


@app.command("init-report")
def init_report(
    model: str = typer.Argument(..., help="784-1000-500-30 (an MLP), a registered model name, or module.path:factory"),
    scheme: list[str] = typer.Option(["glorot_uniform"], "--scheme", "-s", help="init scheme name; repeat to compare"),
    activation: str = typer.Option("tanh", help="activation for an MLP given by sizes"),
    seed: int = typer.Option(0, help="generator seed"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
    out: Path | None = typer.Option(None, "--out", help="also write the rows as JSON to this file"),
):
    """Initialize MODEL with each --scheme and print the per-layer fan-in, fan-out and std table.

    Examples: inertia init-report 784-1000-500-250-30 -s standard_uniform -s glorot_uniform
              inertia init-report mypkg.nets:make_model -s he_normal --json --out init.json
    """
    import torch

    from . import init as inertia_init
    from .experiments.config import check_seed

    check_seed("--seed", seed)
    for s in scheme:
        if getattr(inertia_init.get(s), "model_level", False):
            raise UsageError(
                f"--scheme {s!r} calibrates a whole model on its loss and data, which init-report "
                f"does not have; name it in a run config instead (init: {{scheme: {s}}})"
            )
    _check_parent(out, "--out")
    net = build_model_spec(model, activation)
    out_rows = {}
    for s in scheme:
        report = inertia_init.apply(net, s, generator=torch.Generator().manual_seed(seed))
        if not as_json:
            console.print(f"[bold]scheme: {s}[/]")
            console.print(report.table() if hasattr(report, "table") else str(report))
        out_rows[s] = report.rows
    if as_json:
        print(json.dumps(out_rows, indent=2, default=str))
    if out is not None:
        from .experiments.store import atomic_write_json

        atomic_write_json(out, {"model": model, "activation": activation, "seed": seed, "schemes": out_rows})
        console.print(f"wrote {out}")


def _doctor_inputs(data: str | None, input_shape: str | None, batch: int, seed: int):
    """(inputs, targets, kind): ``batch`` examples of a registered data set, built by its registered
    builder as a run config ``{name: data, n: batch}`` with this seed would build them (a fixed
    set: its first ``batch``), floats in float32; or random inputs of a shape like 784 or 80,2
    (no targets, kind None)."""
    if input_shape is not None and data is None:
        return _random_inputs(input_shape, batch, seed), None, None
    if data is None or input_shape is not None:
        raise UsageError("give exactly one of --data NAME or --input-shape SHAPE (e.g. 784 or 80,2)")
    import torch

    from . import data as inertia_data

    dataset = inertia_data.get(data)
    if dataset.reads_files:
        raise UsageError(f"--data {data} reads your files: load them in Python and call inertia.doctor(model, x, y)")
    x, y = dataset.examples(batch, seed=seed)
    x, y = (t.to(torch.float32) if t.is_floating_point() else t for t in (x, y))
    return x, y, dataset.kind


def _random_inputs(input_shape: str, batch: int, seed: int):
    import torch

    try:
        shape = [int(s) for s in input_shape.replace("x", ",").split(",") if s.strip()]
    except ValueError:
        shape = []
    if not shape or min(shape) < 1:
        raise UsageError(f"--input-shape must be positive integers like 784 or 80,2, got {input_shape!r}")
    try:
        return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))
    except (RuntimeError, OverflowError, TypeError) as e:  # too large to allocate, or for 64 bits
        raise UsageError(f"--input-shape {input_shape!r} with --batch {batch}: {e}") from None


_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _print_findings(findings) -> None:
    """The doctor's findings first and in full, one block each; the fix on a line of its own that the
    terminal may wrap but that pastes whole (no table cell cuts it)."""
    if not findings:
        return
    console.print("[bold]findings[/] (the first is the one to fix first):")
    for i, f in enumerate(findings, 1):
        style = _SEVERITY_STYLE.get(f.severity, "")
        console.print(f"{i:2d}. [{style}]{f.severity}[/] {escape(f.code)}: {escape(f.message)}", highlight=False)
        console.print(f"    fix: {escape(f.fix)}", highlight=False, soft_wrap=True)
        console.print(f"    source: {escape(f.reason)}", highlight=False)


@app.command("doctor")
def doctor_cmd(
    target: str = typer.Argument(
        ..., help="module.path:factory (a callable returning the model), or MLP sizes 784-256-10"
    ),
    data: str | None = typer.Option(None, "--data", help="a registered data set (inertia.data.available())"),
    input_shape: str | None = typer.Option(None, "--input-shape", help="random inputs of this shape, e.g. 784 or 80,2"),
    batch: int = typer.Option(256, help="examples in the batch"),
    lr: float | None = typer.Option(None, help="learning rate to check against the stability bound"),
    momentum: float = typer.Option(0.0, help="momentum for the stability check"),
    nesterov: bool = typer.Option(False, help="Nesterov momentum for the stability check"),
    seed: int = typer.Option(0, help="seed for data and probes"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    wide: bool = typer.Option(False, "--wide", help="every column of the layer table (default: those that fit)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress lines (which measurement runs, time elapsed)"),
    html_path: Path | None = typer.Option(None, "--html", help="also write a self-contained HTML report"),
    loss: str | None = typer.Option(
        None, "--loss", help="cross_entropy or mse (default: cross-entropy for class labels, MSE otherwise)"
    ),
    device: str = typer.Option("cpu", "--device", help="torch device for the model and batch (cpu, cuda, mps)"),
):
    """Tell why a model will not train, and what to change.

    Examples: inertia doctor mypkg.nets:make_model --input-shape 784 --lr 0.1 --momentum 0.9 --nesterov
              inertia doctor 64-100-100-10 --data digits
    """
    from .doctor import doctor
    from .experiments.components import check_outputs
    from .experiments.config import check_seed

    check_seed("--seed", seed)
    check_integer("--batch", batch, lo=1)
    if lr is not None:
        check_number("--lr", lr, lo=0)
    check_number("--momentum", momentum, lo=0, hi=1, hi_open=True)
    _check_parent(html_path, "--html")
    losses = {"cross_entropy": "cross_entropy", "mse": "mse_loss"}
    if loss is not None and loss not in losses:
        raise UsageError(f"--loss {loss!r} is not a loss; accepted: {', '.join(losses)}")
    from .experiments.config import check_device

    check_device(device)
    net = build_model_spec(target, "tanh")
    x, y, kind = _doctor_inputs(data, input_shape, batch, seed)
    if y is not None and data is not None:
        check_outputs(net, x, y, target, data, kind)
    import torch

    net, x = net.to(device), x.to(device)
    y = None if y is None else y.to(device)
    loss_fn = None if loss is None else getattr(torch.nn.functional, losses[loss])
    from .progress import reporting

    with reporting("doctor", quiet=quiet):
        report = doctor(net, x, y, loss_fn=loss_fn, lr=lr, momentum=momentum, nesterov=nesterov, seed=seed)
    if as_json:
        print(report.to_json())
    else:
        _print_findings(report.findings)
        for note in report.notes():
            console.print(note, highlight=False, markup=False)
        _, layers = report.tables(wide=wide)
        # --wide: every cell whole on a wide canvas (the terminal wraps the lines), not squeezed into it
        (Console(width=max(console.width, 200), file=console.file) if wide else console).print(layers)
        console.print(
            "[green]healthy: no warnings or errors[/]"
            if report.healthy
            else f"[bold]{len(report.findings)} finding(s); the first is the one to fix first[/]"
        )
    if html_path is not None:
        report.to_html(html_path)
        if not as_json:
            console.print(f"wrote {html_path}")


def _check_fresh(run_dir: Path) -> None:
    """A run started without --resume never overwrites what an earlier run wrote in its folder."""
    from .experiments.store import RunDir

    rd = RunDir(run_dir)
    held = [p.name for p in (rd.checkpoint, rd.metrics, rd.summary) if p.exists()]
    if held:
        raise UsageError(
            f"{run_dir} already holds a run ({', '.join(held)}): pass --resume to continue it, "
            f"or --run-id to start another beside it"
        )


def _check_resumable(run_dir: Path, cfg) -> None:
    """A run folder to resume holds a whole checkpoint written for this model and optimizer
    (checked before anything is built or written; a checkpoint that cannot be read is kept as it is)."""
    import zipfile

    from .experiments.store import RunDir, read_json, to_json

    rd = RunDir(run_dir)
    if not rd.checkpoint.exists():
        return
    keep = "it is left as it is; give a new --run-id to start this config over"
    size = rd.checkpoint.stat().st_size
    if not zipfile.is_zipfile(rd.checkpoint):
        raise UsageError(
            f"cannot resume: {rd.checkpoint} is not a checkpoint ({size} bytes, not a torch zip "
            f"archive; a write cut off?); {keep}"
        )
    with zipfile.ZipFile(rd.checkpoint) as z:
        bad = z.testzip()
    if bad is not None:
        raise UsageError(f"cannot resume: {rd.checkpoint} is corrupt (entry {bad} fails its checksum); {keep}")
    if rd.config.exists():
        old = read_json(rd.config)
        for key, new in (("model", json.loads(to_json(cfg.model))), ("optimizer.name", cfg.optimizer.name)):
            was = old.get("model") if key == "model" else old.get("optimizer", {}).get("name")
            if was != new:
                raise UsageError(
                    f"cannot resume {run_dir}: its checkpoint is for {key} {was!r}, the config has {new!r}; {keep}"
                )


@app.command("run")
def run_cmd(
    config: Path = typer.Argument(..., help="config file: .yaml, .json or .py (get_config())"),
    set_: list[str] = typer.Option([], "--set", help="override a field: --set optimizer.lr=0.01 (repeatable)"),
    out: Path = typer.Option(Path("runs"), "--out", help="runs are written to OUT/<experiment>/<run-id>/"),
    run_id: str | None = typer.Option(None, "--run-id", help="folder name (default: seed<seed>-<config hash>)"),
    resume: bool = typer.Option(False, "--resume", help="continue from the run folder's last checkpoint"),
    nproc: int = typer.Option(
        1, "--nproc", help="CPU processes training data-parallel (gloo), each on 1/N of every batch; rank 0 writes"
    ),
    quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
):
    """Train one config and record it in a run folder (config, metrics, checkpoints, summary).

    Examples: inertia run configs/curves.yaml --set optimizer.lr=0.01 --set schedule.mu_max=0.99
              inertia run configs/curves.yaml --resume
              inertia run configs/curves.yaml --nproc 2
    """
    import hashlib

    from . import progress as _progress
    from .experiments.components import dry_build
    from .experiments.config import check_path_component, load
    from .experiments.store import run_path, to_json
    from .experiments.train import check_data_parallel, train, train_data_parallel

    if run_id is not None:
        check_path_component("--run-id", run_id)
    cfg = load(config, _parse_overrides(set_))
    check_integer("--nproc", nproc, lo=1)
    check_data_parallel(cfg, nproc)
    rid = run_id or f"seed{cfg.seed}-{hashlib.sha256(to_json(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:10]}"
    run_dir = run_path(out, cfg.experiment, rid, what=("experiment", "--run-id"))
    if resume:
        _check_resumable(run_dir, cfg)
    else:
        _check_fresh(run_dir)
    dry_build(cfg)
    if nproc > 1:
        result = train_data_parallel(cfg, run_dir, nproc, resume=resume, quiet=quiet)
    else:
        with _progress.reporting(f"run {cfg.experiment}/{rid}", quiet=quiet) as reporter:
            result = train(
                cfg,
                run_dir,
                resume=resume,
                progress=lambda step, total, m: reporter.update(step, total, what="updates"),
            )
    if not quiet:
        console.print(
            f"{result.status} at update {result.step}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in result.items() if isinstance(v, float))
        )
        console.print(f"run folder: {run_dir}")
    if result.status == "diverged":
        err_console.print(f"[bold red]diverged:[/] {escape(result.message)}")
        raise typer.Exit(code=1)


@app.command("sweep")
def sweep_cmd(
    config: Path = typer.Argument(..., help="base config file (.yaml, .json, .py)"),
    grid: list[str] = typer.Option([], "--grid", "-g", help="key=v1,v2,...; repeat for a product grid"),
    seeds: int = typer.Option(1, "--seeds", help="seeds per grid point"),
    backend: str = typer.Option(
        "local",
        "--backend",
        help="local (process pool), ray, or stacked (the pool, with runs that share data, model and batch size "
        "trained as one)",
    ),
    workers: int | None = typer.Option(None, "--workers", help="parallel trials (default: one per core)"),
    name: str | None = typer.Option(None, "--name", help="sweep folder name (default: from the grid)"),
    out: Path = typer.Option(Path("runs"), "--out", help="the sweep is written to OUT/<experiment>/<name>/"),
    resume: bool = typer.Option(False, "--resume", help="keep finished trials, re-run unfinished ones"),
    metric: str = typer.Option(
        "train_error", "--metric", help="metric the table ranks learning rates by, and --scheduler compares"
    ),
    set_: list[str] = typer.Option([], "--set", help="override a base-config field (repeatable)"),
    search: str = typer.Option(
        "grid", "--search", help="grid (every --grid point) or random (--samples points of --space, times the grid)"
    ),
    space: list[str] = typer.Option(
        [], "--space", help="with --search random: key=loguniform(lo,hi), uniform(lo,hi), randint(lo,hi), choice(a,b)"
    ),
    samples: int | None = typer.Option(None, "--samples", help="with --search random: how many points to draw"),
    search_seed: int = typer.Option(0, "--search-seed", help="with --search random: the sampler's seed"),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="with --backend ray: asha or median, stopping trials whose --metric is poor"
    ),
    mode: str = typer.Option("min", "--mode", help="with --scheduler: min or max of --metric is better"),
    grace_period: int | None = typer.Option(
        None, "--grace-period", help="with --scheduler: updates before a trial can be stopped (default 2 evaluations)"
    ),
    address: str | None = typer.Option(
        None, "--address", help="with --backend ray: an existing Ray cluster, HOST:PORT (default: start a local one)"
    ),
    resources_per_trial: str | None = typer.Option(
        None, "--resources-per-trial", help="with --backend ray: e.g. cpu=2,gpu=0.5 (default cpu=1)"
    ),
    quiet: bool = typer.Option(False, "--quiet", help="no progress and no table"),
):
    """Run every combination of --grid values times --seeds (or a random search), then print the best-lr table.

    Examples: inertia sweep c.yaml --grid optimizer.lr=0.05,0.01,0.005 --grid schedule.mu_max=0,0.9,0.99 --seeds 3
              inertia sweep c.yaml --grid optimizer.lr=0.1,0.01 --name lr-grid --resume --quiet
              inertia sweep c.yaml --search random --space 'optimizer.lr=loguniform(1e-4,1e-1)' --samples 12 \\
                  --backend ray --scheduler asha --metric train_error
    """
    import importlib.util

    from rich.table import Table

    from . import progress as _progress
    from .experiments.config import check_path_component, load
    from .experiments.search import parse_space, sample_points
    from .experiments.sweep import parse_grid, run_sweep

    if workers is not None:
        check_integer("--workers", workers, lo=1)
    check_integer("--seeds", seeds, lo=1)
    if name is not None:
        check_path_component("--name", name)
    tune = _tune_options(
        backend, search, space, samples, scheduler, metric, mode, grace_period, address, resources_per_trial
    )
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        raise UsageError("--backend ray needs Ray Tune: pip install 'inertia[ray]'")
    base = load(config, _parse_overrides(set_))
    g = parse_grid(grid)
    sp = parse_space(space) if search == "random" else None
    points = sample_points(sp, samples, search_seed) if sp is not None and samples is not None else None
    known = _trial_metrics(base, g, seeds, points)
    if metric not in known:
        raise UsageError(f"--metric {metric!r} is not a metric of these trials; accepted: {', '.join(known)}")
    with _progress.reporting(f"sweep {name or base.experiment}", quiet=quiet):
        res = run_sweep(
            base,
            g,
            seeds,
            out,
            name,
            backend,
            workers,
            resume,
            space=sp,
            samples=samples,
            search_seed=search_seed,
            tune=tune,
        )
    rows = res.table(metric)
    if not quiet and rows:
        t = Table(*rows[0].keys(), title=f"{res.directory}: best lr per setting ({metric})")
        for r in rows:
            t.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values()])
        console.print(t)
    if res.failed:  # the sweep wrote everything; a failed trial has no result, so the run did not succeed
        err_console.print(f"[bold red]failed:[/] {escape(res.failure_message())}", highlight=False)
        raise typer.Exit(code=1)


def _tune_options(backend, search, space, samples, scheduler, metric, mode, grace_period, address, resources_per_trial):
    """Check the sweep's search and Ray options together (one ``error:`` line for any clash);
    the :class:`TuneOptions` for the ray backend, or None."""
    from .experiments.sweep import TuneOptions, parse_resources

    if search not in ("grid", "random"):
        hint = " (optuna is not built in; Tune's random search is --search random)" if search == "optuna" else ""
        raise UsageError(f"--search must be grid or random, got {search!r}{hint}")
    if search == "random" and (not space or samples is None):
        raise UsageError("--search random needs --space key=loguniform(lo,hi) (repeatable) and --samples N")
    if search == "grid" and (space or samples is not None):
        raise UsageError("--space and --samples belong to a random search: add --search random")
    if samples is not None:
        check_integer("--samples", samples, lo=1)
    ray_only = {"--scheduler": scheduler, "--address": address, "--resources-per-trial": resources_per_trial}
    for flag, value in ray_only.items():
        if value is not None and backend != "ray":
            raise UsageError(f"{flag} needs --backend ray, got --backend {backend}")
    if grace_period is not None and scheduler is None:
        raise UsageError("--grace-period belongs to a --scheduler (asha or median)")
    tune = None
    if backend == "ray" and (scheduler or address or resources_per_trial):
        tune = TuneOptions(
            scheduler=scheduler,
            metric=metric,
            mode=mode,
            grace_period=grace_period,
            address=address,
            resources=parse_resources(resources_per_trial) if resources_per_trial else None,
        )
    return tune


def _trial_metrics(base, grid: dict, seeds: int, points: list[dict] | None = None) -> list[str]:
    """Build every distinct trial of the sweep (seeds aside) once, before any runs (a ConfigError
    names the grid point); returns the metric names all trials record."""
    from .experiments.components import dry_build
    from .experiments.config import ConfigError
    from .experiments.store import to_json
    from .experiments.sweep import expand

    metrics: dict = {}
    for _, over, cfg in expand(base, grid, seeds, points):
        key = to_json({k: v for k, v in cfg.to_dict().items() if k != "seed"}, sort_keys=True)
        if key not in metrics:
            try:
                metrics[key] = dry_build(cfg)
            except ConfigError as e:
                raise ConfigError(f"grid point {over}: {e}") from None
    return sorted(set.intersection(*(set(m) for m in metrics.values())))


@app.command("report")
def report_cmd(
    directory: Path = typer.Argument(..., help="a run folder or a sweep folder"),
    metric: str = typer.Option("train_error", "--metric", help="metric for a sweep's table"),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="also write TensorBoard event files (extra)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
):
    """Write report.md and a self-contained report.html for a run or a sweep.

    Examples: inertia report runs/curves/seed0-1a2b3c4d5e
              inertia report runs/curves/lr-grid --metric test_error
    """
    from .experiments.report import write_report, write_tensorboard
    from .progress import reporting

    with reporting(f"report {directory}", quiet=quiet):
        md, page = write_report(directory, metric)
        tb = write_tensorboard(directory) if tensorboard else None
    console.print(f"wrote {md} and {page}" + (f"; TensorBoard events in {tb}" if tb else ""))


@app.command("reproduce")
def reproduce_cmd(
    paper: str = typer.Argument(..., help="a paper (momentum, ...) or all"),
    quick: bool = typer.Option(True, "--quick/--full", help="reduced sizes (minutes on 2 cores) or the paper's"),
    out: Path = typer.Option(Path("runs/reproduce"), "--out", help="folder for results.json, figures and reports"),
    seeds: int = typer.Option(1, "--seeds", help="seeds per stochastic setting"),
    device: str = typer.Option("cpu", "--device", help="torch device for training runs (cpu, cuda, cuda:1, mps)"),
    budget: float | None = typer.Option(
        None,
        "--budget",
        help="with --full: hours to fit in; the papers with long runs (sutskever2013, glorot2010, hu2020) cut "
        "their update counts to fit, and the report says what was cut",
    ),
    backend: str = typer.Option(
        "local", "--backend", help="local (a process pool) or ray: every training pool of the papers as Ray trials"
    ),
    address: str | None = typer.Option(
        None, "--address", help="with --backend ray: an existing Ray cluster, HOST:PORT (default: start a local one)"
    ),
    resources_per_trial: str | None = typer.Option(
        None, "--resources-per-trial", help="with --backend ray: e.g. cpu=2,gpu=0.5 (default cpu=1)"
    ),
    quiet: bool = typer.Option(False, "--quiet", help="no progress output (runs done, time left)"),
):
    """Reproduce a paper's claims; writes results.json, figures, report.md and report.html.

    Papers: sutskever2013, glorot2010, hu2020, temperoni2020, momentum (or all).

    Examples: inertia reproduce all --quick --out runs/reproduce;
    inertia reproduce hu2020 --full --budget 2;
    inertia reproduce sutskever2013 --full --backend ray --address 10.0.0.1:6379
    """
    import importlib.util

    from . import reproduce
    from .experiments.config import check_device
    from .experiments.sweep import default_backend
    from .reproduce.budget import check_budget

    if paper != "all" and paper not in reproduce.PAPERS:
        raise UsageError(f"unknown paper {paper!r}; accepted: all, {', '.join(reproduce.PAPERS)}")
    check_integer("--seeds", seeds, lo=1)
    check_device(device)
    try:
        check_budget(budget, quick)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if backend not in ("local", "ray"):
        raise UsageError(f"--backend must be local or ray, got {backend!r}")
    tune = _tune_options(backend, "grid", [], None, None, "train_error", "min", None, address, resources_per_trial)
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        raise UsageError("--backend ray needs Ray Tune: pip install 'inertia[ray]'")
    from .progress import reporting

    with reporting(f"reproduce {paper}", quiet=quiet), default_backend(backend, tune):
        results = reproduce.run(paper, quick=quick, out=out, seeds=seeds, device=device, budget_hours=budget)
    from rich.table import Table

    t = Table("paper", "claim", "measured", "verdict", title="claims")
    for r in results:
        for c in r.claims:
            t.add_row(r.paper, c.statement, str(c.measured), "[green]PASS[/]" if c.passed else "[red]FAIL[/]")
    console.print(t)
    console.print(f"wrote {out}/report.md and {out}/report.html")


MAX_PLOT_STEPS = 10_000_000  # a plot of more updates than this would take minutes to draw


@schedules_app.command("plot")
def schedules_plot(
    name: str = typer.Argument(..., help="schedule name, e.g. sutskever_momentum"),
    param: list[str] = typer.Option([], "--param", "-p", help="schedule argument: -p mu_max=0.99 (repeatable)"),
    steps: int = typer.Option(3000, help="updates to plot"),
    out: Path = typer.Option(Path("schedule.png"), "--out", help="PNG or SVG file"),
):
    """Plot a schedule.

    Examples: inertia schedules plot sutskever_momentum -p mu_max=0.999 --steps 5000
              inertia schedules plot constant -p value=0.9 --out constant.svg
    """
    from .optim import schedules

    check_integer("--steps", steps, lo=1, hi=MAX_PLOT_STEPS)
    _check_parent(out, "--out")
    sched = schedules.from_config({"name": name, **_parse_overrides(param)})
    schedules.plot(sched, steps, path=out)
    console.print(f"wrote {out}: {sched!r}")


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point (``inertia``, ``python -m inertia``); ``argv`` defaults to
    ``sys.argv[1:]``."""
    app(args=argv)


if __name__ == "__main__":  # python -m inertia.cli, as python -m inertia
    main()
