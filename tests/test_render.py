"""inertia.render: one number format, tables as Markdown / HTML / rich text, self-contained pages."""

import base64
import re
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from inertia.render import (
    Cell,
    Code,
    Image,
    Page,
    Section,
    Table,
    Text,
    figure_bytes,
    format_value,
    render_text,
    save_figure,
)


def line_figure() -> Figure:
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([1, 2, 3])
    return fig


# -- format_value --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, text",
    [
        (0.123456, "0.1235"),
        (1e-7, "1e-07"),
        (2.0, "2"),
        (123456.0, "1.235e+05"),
        (7, "7"),
        (True, "True"),
        (None, "-"),
        ("tanh", "tanh"),
        ((0.5, None, 3), "0.5, -, 3"),
        (float("inf"), "inf"),
    ],
)
def test_format_value_shows_reals_with_four_significant_digits_and_none_as_a_dash(value, text):
    assert format_value(value) == text


def test_format_value_formats_numpy_reals_like_floats():
    assert format_value(np.float32(0.123456)) == "0.1235" and format_value(np.int64(12)) == "12"


def test_format_value_takes_the_number_of_digits_and_the_missing_marker():
    assert format_value(1 / 3, digits=2) == "0.33" and format_value(None, missing="n/a") == "n/a"


@pytest.mark.parametrize("digits", [0, -1, 2.5, True])
def test_format_value_rejects_a_digit_count_that_is_not_a_positive_integer(digits):
    with pytest.raises((ValueError, TypeError), match="digits"):
        format_value(1.0, digits=digits)


# -- tables --------------------------------------------------------------------------------------
def test_a_table_has_every_key_of_its_rows_in_the_order_they_first_appear():
    t = Table([{"a": 1, "b": 2}, {"c": 3, "a": 4}])
    assert t.header == ("a", "b", "c")
    assert t.to_markdown().splitlines()[3] == "| 4 | - | 3 |"


def test_a_table_of_sequences_takes_its_columns_in_order():
    t = Table([("fc1", 0.5)], columns=["layer", "std"])
    assert t.to_markdown() == "| layer | std |\n|---|---|\n| fc1 | 0.5 |\n"


def test_given_columns_select_and_order_the_keys_of_mapping_rows():
    assert Table([{"a": 1, "b": 2}], columns=("b",)).to_markdown() == "| b |\n|---|\n| 2 |\n"


def test_a_markdown_cell_cannot_end_or_split_its_row():
    md = Table([{"col|x": "a|b\nc"}]).to_markdown()
    assert md.splitlines() == ["| col\\|x |", "|---|", "| a\\|b c |"]


def test_an_html_table_escapes_headers_and_cells():
    page = Table([{"<th>": "<script>alert('x')</script>"}]).to_html()
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<th>&lt;th&gt;</th>" in page


def test_a_table_without_rows_says_so_or_shows_nothing_when_told():
    assert Table([]).to_markdown() == "_(no rows)_\n" and Table([]).to_html() == "<p>(no rows)</p>"
    assert Table([], empty="").to_markdown() == "" and Table([], empty="").to_html() == ""


def test_a_table_title_is_shown_in_markdown_html_and_rich_text():
    t = Table([{"layer": "a long layer name"}], title="findings")
    assert t.to_markdown().startswith("**findings**\n\n")
    assert "<caption>findings</caption>" in t.to_html()
    assert "findings" in t.to_text()


def test_rich_text_shows_brackets_literally_rather_than_as_markup():
    text = Table([{"[bold]layer": "[red]fc1[/red]"}]).to_text()
    assert "[bold]layer" in text and "[red]fc1[/red]" in text


def test_render_text_prints_tables_and_lines_in_order_without_colour_codes():
    text = render_text(["first line", Table([{"metric": "loss", "value": 0.25}])], width=60)
    assert text.index("first line") < text.index("metric") < text.index("0.25")
    assert "\x1b[" not in text and max(len(line) for line in text.splitlines()) <= 60


@pytest.mark.parametrize("rows", ["ab", {"a": 1}, 3])
def test_rows_that_are_not_a_sequence_of_rows_are_a_type_error(rows):
    with pytest.raises(TypeError, match="rows must be a sequence"):
        Table(rows)


def test_a_sequence_row_without_columns_is_a_type_error_naming_the_row():
    with pytest.raises(TypeError, match="row 1 must be a mapping"):
        Table([{"a": 1}, [2]])


def test_a_sequence_row_of_the_wrong_length_is_a_type_error():
    with pytest.raises(TypeError, match="row 0 must be a mapping or a sequence of 2 values"):
        Table([(1, 2, 3)], columns=("a", "b"))


def test_a_cell_with_a_css_class_and_code_style_renders_both():
    t = Table([{"fix": Cell("x = `y`", css_class="warning", code=True)}])
    assert "<td class='warning'><code>x = `y`</code></td>" in t.to_html()
    assert t.to_markdown().splitlines()[2] == "| `` x = `y` `` |"


@pytest.mark.parametrize("css_class", ["a' onclick='x", "1abc", "", "a b"])
def test_a_css_class_that_could_break_the_attribute_is_rejected(css_class):
    with pytest.raises(ValueError, match="css_class"):
        Cell("v", css_class=css_class)


# -- blocks and pages ----------------------------------------------------------------------------
def test_code_is_fenced_past_any_backticks_it_holds():
    md = Code("a ``` b").to_markdown()
    assert md == "````\na ``` b\n````\n"


def test_an_image_needs_exactly_one_of_a_file_and_bytes(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        Image("c")
    with pytest.raises(ValueError, match="exactly one"):
        Image("c", path=tmp_path / "a.png", data=b"x")


def test_an_image_file_that_a_browser_cannot_show_inline_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="a.pdf"):
        Image("c", path=tmp_path / "a.pdf")


def test_an_image_file_is_linked_relative_to_the_markdown_and_embedded_in_the_html(tmp_path):
    (tmp_path / "figs").mkdir()
    png = save_figure(line_figure(), tmp_path / "figs" / "loss.png")
    img = Image("loss", path=png)
    assert img.to_markdown(at=tmp_path) == "![loss](figs/loss.png)\n\n*loss*\n"
    b64 = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", img.to_html()).group(1)
    assert base64.b64decode(b64) == png.read_bytes()


def test_an_image_outside_the_markdown_folder_is_linked_by_its_full_path(tmp_path):
    img = Image("c", path=tmp_path / "a b" / "x.png")
    assert f"(<{(tmp_path / 'a b' / 'x.png').as_posix()}>)" in img.to_markdown(at=tmp_path / "elsewhere")


def test_an_image_caption_cannot_break_out_of_the_img_attribute():
    page = Image("it's <b>", data=b"png").to_html()
    assert "alt='it&#x27;s &lt;b&gt;'" in page and "<b>" not in page


def test_sections_render_their_heading_level_and_nested_sections():
    s = Section("paper", [Text("intro"), Section("table 1", [Table([{"a": 1}])], level=3)])
    assert s.to_markdown().startswith("## paper\n\nintro\n\n### table 1\n\n| a |")
    assert (
        s.to_html() == "<h2>paper</h2><p>intro</p><h3>table 1</h3><table><tr><th>a</th></tr><tr><td>1</td></tr></table>"
    )


@pytest.mark.parametrize("level", [1, 7])
def test_a_section_level_outside_2_to_6_is_rejected(level):
    with pytest.raises(ValueError, match="level"):
        Section("x", level=level)


def test_a_page_writes_markdown_and_html_that_needs_no_other_file(tmp_path):
    png = save_figure(line_figure(), tmp_path / "curve.png")
    page = Page("run <1>", [Section("curves", [Image("curve", path=png)])])
    md, html_path = page.write(tmp_path)
    assert md.read_text() == "# run <1>\n\n## curves\n\n![curve](curve.png)\n\n*curve*\n"
    text = html_path.read_text()
    assert "<title>run &lt;1&gt;</title>" in text and "<h1>run &lt;1&gt;</h1>" in text
    assert re.findall(r"src='([^']*)'", text) and all(
        s.startswith("data:image/png;base64,") for s in re.findall(r"src='([^']*)'", text)
    )


def test_a_page_style_cannot_close_the_style_element():
    with pytest.raises(ValueError, match="style"):
        Page("x", style="</style><script>alert(1)</script>")


# -- figures -------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_save_figure_writes_the_format_of_the_suffix_into_new_folders(tmp_path, suffix, magic):
    path = save_figure(line_figure(), tmp_path / "a" / f"fig{suffix}")
    assert path.read_bytes().startswith(magic)


def test_save_figure_with_crop_keeps_a_colorbar_shared_by_two_axes(tmp_path):
    fig = Figure(figsize=(4, 2))
    axes = fig.subplots(1, 2)
    mesh = axes[0].pcolormesh([[0, 1], [1, 0]])
    fig.colorbar(mesh, ax=axes)
    positions = [ax.get_position().bounds for ax in axes]
    path = save_figure(fig, tmp_path / "cropped.png", crop=True)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert [ax.get_position().bounds for ax in axes] == positions  # no tight_layout: the layout is kept


def test_save_figure_rejects_an_unknown_suffix_before_writing(tmp_path):
    with pytest.raises(ValueError, match="fig.txt"):
        save_figure(line_figure(), tmp_path / "new" / "fig.txt")
    assert not (tmp_path / "new").exists()


def test_save_figure_and_figure_bytes_take_only_matplotlib_figures(tmp_path):
    with pytest.raises(TypeError, match="matplotlib.figure.Figure"):
        save_figure("not a figure", tmp_path / "x.png")
    with pytest.raises(TypeError, match="matplotlib.figure.Figure"):
        figure_bytes(object())


def test_figure_bytes_renders_png_or_svg_and_nothing_else():
    assert figure_bytes(line_figure()).startswith(b"\x89PNG")
    assert figure_bytes(line_figure(), "svg").startswith(b"<?xml")
    with pytest.raises(ValueError, match="format"):
        figure_bytes(line_figure(), "jpg")


def test_an_image_from_a_figure_is_a_file_when_given_a_path_and_bytes_otherwise(tmp_path):
    assert Image.from_figure(line_figure(), "c", tmp_path / "c.png").path == tmp_path / "c.png"
    assert (tmp_path / "c.png").exists()
    assert Image.from_figure(line_figure(), "c").data.startswith(b"\x89PNG")


@pytest.mark.slow  # a fresh interpreter imports torch (inertia's package import)
def test_rendering_a_report_with_figures_never_imports_pyplot(tmp_path):
    code = (
        "import sys\n"
        "from matplotlib.figure import Figure\n"
        "from inertia.render import Image, Page, save_figure\n"
        "fig = Figure(); fig.subplots().plot([1, 2])\n"
        f"Page('p', [Image.from_figure(fig, 'c', {str(tmp_path / 'c.png')!r})]).write({str(tmp_path)!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
