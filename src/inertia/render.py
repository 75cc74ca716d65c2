"""How results are shown: numbers, tables, report pages and figure files, written once.

Every report of the library (``inertia report`` for runs and sweeps, ``inertia reproduce``'s claims
report, the doctor's page and its terminal tables) is built from the pieces here, so a number, a
table or a figure looks the same wherever it appears:

- :func:`format_value`: one number format (``4`` significant digits by default, ``-`` for missing).
- :class:`Table`: rows (mappings, or sequences with ``columns``) rendered as Markdown, HTML or a
  ``rich`` table; :class:`Cell` gives one cell a CSS class or code style.
- :class:`Page`: a title and blocks (:class:`Text`, :class:`Code`, :class:`Table`, :class:`Image`,
  :class:`Section`), written as Markdown and as one self-contained HTML file: every text is
  escaped, and every figure is embedded (base64), so the HTML needs nothing beside it.
- :func:`save_figure` and :func:`figure_bytes`: a ``matplotlib.figure.Figure`` laid out and written
  to a file or to bytes. Figures are made with ``matplotlib.figure.Figure`` (or
  :func:`inertia.diagnostics.plots.subplots`), never with pyplot's global state, so the user's
  backend and pyplot's list of open figures are left alone.

Examples:
    >>> table = Table([{"lr": 0.1, "error": 0.123456}, {"lr": 0.01, "error": None}])
    >>> print(table.to_markdown(), end="")
    | lr | error |
    |---|---|
    | 0.1 | 0.1235 |
    | 0.01 | - |
    >>> page = Page("run 1", [Section("final metrics", [table]), Section("notes", [Text("a < b")])])
    >>> "<h2>notes</h2><p>a &lt; b</p>" in page.to_html()
    True
"""

from __future__ import annotations

import base64
import html
import io
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ._atomic import atomic_write_bytes
from .validation import check_integer

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.table import Table as RichTable

__all__ = [
    "FIGURE_SUFFIXES",
    "STYLE",
    "Block",
    "Cell",
    "Code",
    "Image",
    "Page",
    "Section",
    "Table",
    "Text",
    "figure_bytes",
    "format_value",
    "legend_outside",
    "series_style",
    "render_text",
    "save_figure",
]

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")  # what save_figure writes (matplotlib picks the renderer)
_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}
_CSS_CLASS = re.compile(r"-?[A-Za-z_][A-Za-z0-9_-]*")
STYLE = (  # the stylesheet of every page; Page(style=...) adds rules after it
    "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px}pre{background:#f6f6f6;padding:1em;overflow:auto}"
    "img{max-width:800px}"
)


# -- numbers and cells ---------------------------------------------------------------------------
def format_value(value: Any, digits: int = 4, missing: str = "-") -> str:
    """``value`` as table text: a real number with ``digits`` significant digits (``%g``), an integer
    or a bool as written, ``None`` as ``missing``, a list or tuple as its formatted items joined by
    ``", "``, a :class:`Cell` as its value, anything else as ``str(value)``.

    Examples:
        >>> format_value(0.000123456), format_value(2.0), format_value(12345678.0), format_value(3)
        ('0.0001235', '2', '1.235e+07', '3')
        >>> format_value([0.5, None, "tanh"]), format_value(True), format_value(float("nan"))
        ('0.5, -, tanh', 'True', 'nan')
        >>> format_value(1 / 3, digits=2), format_value(None, missing="n/a")
        ('0.33', 'n/a')
    """
    check_integer("digits", digits, lo=1)
    if isinstance(value, Cell):
        value = value.value
    if value is None:
        return missing
    if isinstance(value, (bool, numbers.Integral, str)):
        return str(value)
    if isinstance(value, numbers.Real):  # float, numpy and other real scalars
        return f"{float(value):.{digits}g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v, digits, missing) for v in value)
    return str(value)


@dataclass(frozen=True)
class Cell:
    """A table value with a look: ``css_class`` (an HTML class, e.g. ``"warning"``, styled by the
    page's ``style``) and ``code`` (monospace: ``<code>`` in HTML, backticks in Markdown).

    Examples:
        >>> row = {"fix": Cell("lr=0.01", code=True), "severity": Cell("error", css_class="error")}
        >>> Table([row]).to_html().split("</tr>")[1]
        "<tr><td><code>lr=0.01</code></td><td class='error'>error</td>"
        >>> Table([row]).to_markdown().splitlines()[2]
        '| `lr=0.01` | error |'
    """

    value: Any
    css_class: str | None = None
    code: bool = False

    def __post_init__(self) -> None:
        if self.css_class is not None and not (
            isinstance(self.css_class, str) and _CSS_CLASS.fullmatch(self.css_class)
        ):
            raise ValueError(f"css_class must be a CSS class name (letters, digits, _ and -), got {self.css_class!r}")


def _md_text(text: str) -> str:
    """Text that cannot end or split a Markdown table row."""
    return text.replace("|", "\\|").replace("\n", " ")


def _md_code(text: str) -> str:
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_cell(value: Any, text: str) -> str:
    return _md_text(_md_code(text) if isinstance(value, Cell) and value.code else text)


def _html_cell(value: Any, text: str) -> str:
    inner = html.escape(text)
    if not isinstance(value, Cell):
        return f"<td>{inner}</td>"
    if value.code:
        inner = f"<code>{inner}</code>"
    return f"<td class='{value.css_class}'>{inner}</td>" if value.css_class else f"<td>{inner}</td>"


# -- tables --------------------------------------------------------------------------------------
def _columns_of(rows: Sequence[Any]) -> tuple[str, ...]:
    """Every key of the rows, in the order they first appear."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return tuple(seen)


@dataclass(frozen=True)
class Table:
    """Rows shown as a table. A row is a mapping (column -> value; a missing key shows as ``-``) or,
    when ``columns`` is given, a sequence of values in the columns' order. Without ``columns`` the
    columns are the rows' keys in the order they first appear. Values are shown by
    :func:`format_value` with ``digits``; a table without rows shows ``empty`` (nothing if ``""``).

    Examples:
        >>> t = Table([("fc1", 0.0123), ("fc2", None)], columns=("layer", "std"), digits=2)
        >>> print(t.to_markdown(), end="")
        | layer | std |
        |---|---|
        | fc1 | 0.012 |
        | fc2 | - |
        >>> Table([]).to_html()
        '<p>(no rows)</p>'
        >>> print(Table([{"a": "x|y"}], title="pipes").to_markdown(), end="")
        **pipes**
        <BLANKLINE>
        | a |
        |---|
        | x\\|y |
    """

    rows: Sequence[Any]
    columns: Sequence[str] | None = None
    title: str | None = None
    digits: int = 4
    empty: str = "(no rows)"
    header: tuple[str, ...] = field(init=False, repr=False)
    _values: tuple[tuple[Any, ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_integer("digits", self.digits, lo=1)
        if isinstance(self.rows, (str, bytes, Mapping)) or not isinstance(self.rows, Sequence):
            raise TypeError(f"rows must be a sequence of rows, got {type(self.rows).__name__}")
        if self.columns is not None and (
            isinstance(self.columns, str) or not all(isinstance(c, str) for c in self.columns)
        ):
            raise TypeError(f"columns must be a sequence of column names (str), got {self.columns!r}")
        header = tuple(self.columns) if self.columns is not None else _columns_of(self._check_rows())
        object.__setattr__(self, "header", tuple(str(c) for c in header))
        object.__setattr__(self, "_values", tuple(self._row_values(i, r) for i, r in enumerate(self.rows)))

    def _check_rows(self) -> Sequence[Mapping]:
        for i, row in enumerate(self.rows):
            if not isinstance(row, Mapping):
                raise TypeError(f"row {i} must be a mapping (column -> value) when no columns are given, got {row!r}")
        return self.rows

    def _row_values(self, i: int, row: Any) -> tuple[Any, ...]:
        if isinstance(row, Mapping):
            return tuple(row.get(c) for c in self.header)
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) != len(self.header):
            raise TypeError(f"row {i} must be a mapping or a sequence of {len(self.header)} values, got {row!r}")
        return tuple(row)

    def _texts(self) -> list[list[tuple[Any, str]]]:
        return [[(v, format_value(v, self.digits)) for v in row] for row in self._values]

    def to_markdown(self, at: Path | None = None) -> str:
        """A Markdown (GitHub) table, ending in a newline. ``at`` (unused) is the :class:`Block` signature."""
        title = f"**{_md_text(self.title)}**\n\n" if self.title else ""
        if not self._values:
            return f"{title}_{_md_text(self.empty)}_\n" if self.empty else title
        head = "| " + " | ".join(_md_text(c) for c in self.header) + " |\n|" + "---|" * len(self.header) + "\n"
        body = "".join("| " + " | ".join(_md_cell(v, t) for v, t in row) + " |\n" for row in self._texts())
        return title + head + body

    def to_html(self) -> str:
        """An HTML ``<table>`` (title as its ``<caption>``); every text is escaped."""
        if not self._values:
            return f"<p>{html.escape(self.empty)}</p>" if self.empty else ""
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in self.header) + "</tr>"
        body = "".join("<tr>" + "".join(_html_cell(v, t) for v, t in row) + "</tr>" for row in self._texts())
        return f"<table>{caption}{head}{body}</table>"

    def __rich__(self) -> RichTable:
        """``rich``'s console prints the table, not its repr."""
        return self.to_rich()

    def to_rich(self) -> RichTable:
        """A ``rich.table.Table``. Texts are shown literally (``[x]`` is not read as rich markup)."""
        from rich.table import Table as RichTable
        from rich.text import Text as RichText

        table = RichTable(title=RichText(self.title) if self.title else None)
        for c in self.header:
            table.add_column(RichText(c))
        for row in self._texts():
            table.add_row(*(RichText(t) for _, t in row))
        return table

    def to_text(self, width: int = 160) -> str:
        """The rich table as plain text (no colour codes), ``width`` characters wide at most.

        Examples:
            >>> text = Table([{"layer": "fc1", "std": 0.5}]).to_text()
            >>> "layer" in text and "fc1" in text and "0.5" in text
            True
        """
        return render_text([self], width)


def render_text(renderables: Sequence[Any], width: int = 160) -> str:
    """Tables (:class:`Table`), rich renderables or strings printed one after another by rich, as
    plain text at most ``width`` characters wide (what a report's ``__str__`` returns).

    Examples:
        >>> print(render_text(["two tables follow", Table([{"a": 1}])]).splitlines()[0])
        two tables follow
    """
    from rich.console import Console
    from rich.text import Text as RichText

    check_integer("width", width, lo=20)
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=False, color_system=None)
    for r in renderables:
        console.print(r.to_rich() if isinstance(r, Table) else RichText(r) if isinstance(r, str) else r)
    return buf.getvalue()


# -- page blocks ---------------------------------------------------------------------------------
class Block(Protocol):
    """What a :class:`Page` or :class:`Section` holds: it renders as Markdown (``at``: the folder of
    the Markdown file, for relative figure links) and as HTML."""

    def to_markdown(self, at: Path | None = None) -> str: ...

    def to_html(self) -> str: ...


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text (escaped in HTML).

    Examples:
        >>> Text("3 of 4 claims pass.").to_html()
        '<p>3 of 4 claims pass.</p>'
    """

    text: str

    def to_markdown(self, at: Path | None = None) -> str:
        return f"{self.text}\n"

    def to_html(self) -> str:
        return f"<p>{html.escape(self.text)}</p>"


@dataclass(frozen=True)
class Code:
    """Preformatted text: a fenced block in Markdown (``language`` names it), ``<pre>`` in HTML.

    Examples:
        >>> print(Code('{"lr": 0.1}', "json").to_markdown(), end="")
        ```json
        {"lr": 0.1}
        ```
        >>> Code("<b>").to_html()
        '<pre>&lt;b&gt;</pre>'
    """

    text: str
    language: str = ""

    def to_markdown(self, at: Path | None = None) -> str:
        fence = "`" * max(3, max((len(run) for run in re.findall("`+", self.text)), default=0) + 1)
        return f"{fence}{self.language}\n{self.text}\n{fence}\n"

    def to_html(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"


@dataclass(frozen=True)
class Image:
    """A figure with its caption: a file (``path``: linked from Markdown, embedded in HTML) or bytes
    (``data``, of type ``mime``: embedded in both). :meth:`from_figure` makes one from a matplotlib
    figure. A file is read when the page is rendered.

    Examples:
        >>> print(Image("loss <", data=b"\\x89PNG").to_html().replace("><", ">\\n<"))
        <figure>
        <img alt='loss &lt;' src='data:image/png;base64,iVBORw=='>
        <figcaption>loss &lt;</figcaption>
        </figure>
        >>> print(Image("loss", path=Path("/runs/a/loss.png")).to_markdown(at=Path("/runs/a")), end="")
        ![loss](loss.png)
        <BLANKLINE>
        *loss*
    """

    caption: str
    path: Path | None = None
    data: bytes | None = None
    mime: str = "image/png"

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("an Image needs exactly one of path (a file) and data (bytes)")
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))
            suffix = Path(self.path).suffix.lower()
            if suffix not in _MIME:
                raise ValueError(f"an embedded figure must be a {', '.join(_MIME)} file, got {str(self.path)!r}")
            object.__setattr__(self, "mime", _MIME[suffix])
        elif not isinstance(self.data, bytes):
            raise TypeError(f"data must be bytes, got {type(self.data).__name__}")

    @classmethod
    def from_figure(cls, fig: Figure, caption: str, path: str | Path | None = None) -> Image:
        """``fig`` written to ``path`` (see :func:`save_figure`), or kept as PNG bytes without a path."""
        if path is not None:
            return cls(caption, path=save_figure(fig, path))
        return cls(caption, data=figure_bytes(fig))

    def _data_uri(self) -> str:
        data = self.data if self.data is not None else Path(str(self.path)).read_bytes()
        return f"data:{self.mime};base64,{base64.b64encode(data).decode()}"

    def _link(self, at: Path | None) -> str:
        if self.path is None:
            return self._data_uri()
        rel = self.path.relative_to(at) if at is not None and self.path.is_relative_to(at) else self.path
        text = rel.as_posix()
        return f"<{text}>" if re.search(r"[\s()<>]", text) else text

    def to_markdown(self, at: Path | None = None) -> str:
        caption = _md_text(self.caption)
        alt = caption.replace("[", "\\[").replace("]", "\\]")
        italic = caption.replace("*", "\\*")
        return f"![{alt}]({self._link(at)})\n\n*{italic}*\n"

    def to_html(self) -> str:
        cap = html.escape(self.caption)
        return f"<figure><img alt='{cap}' src='{self._data_uri()}'><figcaption>{cap}</figcaption></figure>"


@dataclass(frozen=True)
class Section:
    """A heading (``level`` 2 to 6: ``##`` / ``<h2>`` and below; the page's title is level 1) and
    the blocks under it, which may be sections of a higher level.

    Examples:
        >>> print(Section("grid", [Code("{}")], level=3).to_markdown(), end="")
        ### grid
        <BLANKLINE>
        ```
        {}
        ```
    """

    heading: str
    blocks: Sequence[Block] = ()
    level: int = 2

    def __post_init__(self) -> None:
        check_integer("level", self.level, lo=2, hi=6)

    def to_markdown(self, at: Path | None = None) -> str:
        return "\n".join([f"{'#' * self.level} {_md_text(self.heading)}\n", *(b.to_markdown(at) for b in self.blocks)])

    def to_html(self) -> str:
        head = f"<h{self.level}>{html.escape(self.heading)}</h{self.level}>"
        return head + "".join(b.to_html() for b in self.blocks)


@dataclass(frozen=True)
class Page:
    """A report: a title and blocks, rendered as Markdown and as a self-contained HTML page (all text
    escaped, all figures embedded). ``style`` adds CSS rules after :data:`STYLE` (for the classes
    that :class:`Cell` puts on cells).

    Examples:
        >>> page = Page("sweep <s>", [Text("best lr: 0.1")], style=".error{color:#b00}")
        >>> print(page.to_markdown(), end="")
        # sweep <s>
        <BLANKLINE>
        best lr: 0.1
        >>> html = page.to_html()
        >>> "<title>sweep &lt;s&gt;</title>" in html and ".error{color:#b00}</style>" in html
        True
    """

    title: str
    blocks: Sequence[Block] = ()
    style: str = ""

    def __post_init__(self) -> None:
        if "</" in self.style or "<!" in self.style:
            raise ValueError(f"style must be CSS rules without markup, got {self.style!r}")

    def to_markdown(self, at: Path | None = None) -> str:
        """The page as Markdown; figure files are linked relative to ``at`` (the Markdown file's folder)."""
        return "\n".join([f"# {_md_text(self.title)}\n", *(b.to_markdown(at) for b in self.blocks)])

    def to_html(self) -> str:
        title = html.escape(self.title)
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{STYLE}{self.style}</style></head><body><h1>{title}</h1>"
            + "".join(b.to_html() for b in self.blocks)
            + "</body></html>"
        )

    def write(self, directory: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``<stem>.md`` and ``<stem>.html`` into ``directory`` (atomically); return both paths."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        md, page = d / f"{stem}.md", d / f"{stem}.html"
        atomic_write_bytes(md, self.to_markdown(d).encode("utf-8"))
        atomic_write_bytes(page, self.to_html().encode("utf-8"))
        return md, page


# -- figures -------------------------------------------------------------------------------------
def _check_figure(fig: Any) -> None:
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(
            "fig must be a matplotlib.figure.Figure (make one with inertia.diagnostics.plots.subplots), "
            f"got {type(fig).__name__}"
        )


_LINESTYLES = ("-", "--", ":", "-.")


def series_style(i: int) -> dict[str, str]:
    """The line style of series ``i``: the 10 colours of matplotlib's cycle, then the same colours
    dashed, dotted and dash-dotted, so that up to 40 series never share a style.

    Examples:
        >>> series_style(0), series_style(10), series_style(23)
        ({'color': 'C0', 'linestyle': '-'}, {'color': 'C0', 'linestyle': '--'}, {'color': 'C3', 'linestyle': ':'})
    """
    return {"color": f"C{i % 10}", "linestyle": _LINESTYLES[(i // 10) % len(_LINESTYLES)]}


def legend_outside(ax: Any, title: str | None = None) -> Any:
    """A legend to the right of ``ax``, outside its data area (one column up to 16 entries, then
    two); the figure's layout (``save_figure``) makes room for it. Returns the legend, or None
    when nothing is labelled."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(
        handles,
        labels,
        title=title,
        fontsize="small",
        title_fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        ncol=1 if len(handles) <= 16 else 2,
        frameon=False,
    )


def save_figure(fig: Figure, path: str | Path, *, crop: bool = False) -> Path:
    """Lay out ``fig`` (``tight_layout``) and write it to ``path`` (PNG, SVG or PDF by the suffix;
    parent folders are made); return ``path``. ``crop=True`` instead keeps the layout and crops the
    image to what is drawn (``bbox_inches="tight"``: for a colorbar shared by several axes, which
    ``tight_layout`` cannot place).

    Examples:
        >>> import tempfile
        >>> from matplotlib.figure import Figure
        >>> fig = Figure(figsize=(2, 2)); _ = fig.subplots().plot([1, 2])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     save_figure(fig, Path(d) / "figs" / "line.png").read_bytes()[:4]
        b'\\x89PNG'
    """
    _check_figure(fig)
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise ValueError(f"figure path must end in {', '.join(FIGURE_SUFFIXES)}, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if crop:
        fig.savefig(path, bbox_inches="tight")
    else:
        fig.tight_layout()
        fig.savefig(path)
    return path


def figure_bytes(fig: Figure, format: str = "png") -> bytes:
    """``fig`` laid out and rendered to bytes (``format``: ``"png"`` or ``"svg"``), for a page that
    embeds it without writing a file.

    Examples:
        >>> from matplotlib.figure import Figure
        >>> fig = Figure(figsize=(2, 2)); _ = fig.subplots().plot([1, 2])
        >>> figure_bytes(fig)[:4]
        b'\\x89PNG'
    """
    _check_figure(fig)
    if format not in ("png", "svg"):
        raise ValueError(f"format must be one of 'png', 'svg', got {format!r}")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format=format)
    return buf.getvalue()
