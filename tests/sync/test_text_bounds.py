"""HTML to text does bounded work on hostile bodies, shown without a clock: a 5 MB body gives exactly the text
of its first 2 MB (plus the marker), and converting it peaks at the memory its first 2 MB takes, under a
stated ceiling. Memory is traced by tracemalloc (the Python objects of the tree, which is where it goes: the
lxml parser feeds BeautifulSoup event by event and keeps no tree of its own)."""

from __future__ import annotations

import tracemalloc

import pytest

from pipelines.sync.text import DEFAULT_MAX_CHARS, html_to_text, truncation_marker

pytestmark = pytest.mark.slow  # four conversions of 2 MB or more under tracemalloc: about 30 s

CEILING_MIB = 256  # measured: about 140 MiB for either shape's first 2 MB
SLACK = 1.1  # the whole body may cost its copies beyond the cut, no more

ROW = "<tr><td>2024-03-02</td><td>Coffee <b>beans</b></td><td>€38.00</td></tr>\n"
SHAPES = {
    "a 5 MB statement table": "<table>" + ROW * (5_000_000 // len(ROW)) + "</table>",
    # The most elements per byte: where a parser and a tree spend the most per character.
    "5 MB of tiny spans": "<div>" + "<span>x</span>" * 360_000 + "</div>",
}


def converted(html: str) -> tuple[str, float]:
    """The text of `html`, and the peak memory traced while converting it (MiB)."""
    tracemalloc.start()
    try:
        text = html_to_text(html)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return text, peak / 2**20


@pytest.mark.parametrize("shape", SHAPES)
def test_a_huge_body_costs_what_its_first_2_mb_cost(shape: str) -> None:
    html = SHAPES[shape]
    assert len(html) > 2.4 * DEFAULT_MAX_CHARS
    head = html[:DEFAULT_MAX_CHARS]

    whole_text, whole_peak = converted(html)
    head_text, head_peak = converted(head)

    # Cut before parsing: nothing past the cap reaches the text.
    assert whole_text == f"{head_text}\n\n{truncation_marker(len(html), DEFAULT_MAX_CHARS)}"
    # And it cost what the cut costs: without the cap the tree of 5 MB would take about 2.5 times as much.
    assert whole_peak <= SLACK * head_peak, (whole_peak, head_peak)
    assert whole_peak < CEILING_MIB, whole_peak
