"""HTML to text on a corpus of awkward real-world shapes, and on hostile input."""

from pathlib import Path

import pytest

from pipelines.sync.text import DEFAULT_MAX_CHARS, html_to_text, tidy_text, truncation_marker

CORPUS = Path(__file__).parent / "corpus"


def convert(name: str) -> str:
    return html_to_text((CORPUS / name).read_text(encoding="utf-8"))


def assert_lines_in_order(text: str, *expected: str) -> None:
    """Each expected line appears as a whole line, in this order."""
    lines = text.split("\n")
    at = 0
    for line in expected:
        assert line in lines[at:], f"{line!r} missing (or out of order) in:\n{text}"
        at = lines.index(line, at) + 1


def test_newsletter_keeps_content_and_drops_styles_scripts_and_hidden_text() -> None:
    text = convert("newsletter.html")
    for noise in ("{", "margin", "@media", "trackOpen", "Issue 42", "preheader", "invoice summary"):
        assert noise not in text
    assert_lines_in_order(
        text,
        "Your March statement is ready",
        "Hi Ada,",
        "here is what happened on your account this month.",
        "Date | Description | Amount",
        "2024-03-02 | Coffee beans (2 kg) | €38.00",
        "2024-03-14 | Grinder repair | €120.50",
        "Total | €158.50",
        "Tip of the week",
        "Store beans away from light.",
        "From the blog",
        "Read Espresso 101 (https://news.example.com/blog/espresso-101?utm_campaign=42) for more.",
        "View statement (https://news.example.com/statement/2024-03)",
        "Unsubscribe (https://news.example.com/unsubscribe?u=abc123) · Preferences (https://news.example.com/prefs)",
    )
    # Layout columns are stacked, never glued into one line with " | ".
    assert "Tip of the week |" not in text


def test_outlook_word_html_reads_like_the_message() -> None:
    text = convert("outlook_word.html")
    for noise in ("MsoNormal", "font-family", "@list", "shapedefaults", "supportLists", "endif", "VML"):
        assert noise not in text
    assert text.startswith("Hi team,\n\nBefore Friday’s release, please check:\n")
    assert_lines_in_order(
        text,
        "· The migration ran on staging",
        "· The changelog mentions the new delta sync",
        "Dashboard: https://dash.example.com/releases/41",
        "Thanks,",
        "Grace",
        "From: Ada Lovelace <ada@example.com>",
        "Sent: Tuesday, 5 March 2024 09:12",
        "Subject: Release 41",
        "Can we ship on Friday?",
    )
    assert "Thanks,\nGrace" in text, "margin-less Word paragraphs read as lines"
    assert "https://dash.example.com/releases/41 (" not in text, (
        "a link whose text is its URL is not repeated"
    )


def test_a_reply_keeps_its_quoted_history_as_quotes() -> None:
    text = convert("reply_quoted.html")
    assert text.startswith("Sounds good, Thursday 3pm works.\n\nSee you then,\nBob")
    assert_lines_in_order(
        text,
        "Bob Builder | Site Lead",
        "+1 555 0100 | bob@example.com",
        "On Mon, 4 Mar 2024 at 10:02, Alice <alice@example.com> wrote:",
        "> Could we meet on Thursday?",
        "> 1. Budget",
        "> 2. Schedule",
        ">    - foundations",
        ">    - roof",
        "> On Sun, 3 Mar 2024, Bob wrote:",
        "> > Let's talk next week.",
    )
    assert "mailto:" not in text


def test_non_ascii_text_and_entities_decode() -> None:
    text = convert("non_ascii.html")
    assert "ignored" not in text
    assert_lines_in_order(
        text,
        "Bonjour Zoë, voilà le récapitulatif : 3 € pour le café — c’est tout.",
        "Grüße aus München! Straße, Größe, Maß.",
        "日本語のテキストです。会議は明日の午後です。",
        "مرحبا بالعالم",
        "Emoji: 🎉 👩‍💻 — and a quote: «très bien» & <tags> shown literally.",
        "Math: 2 × 3 ≠ 7, π ≈ 3.14159",
    )
    assert "\u00a0" not in text


def test_broken_markup_still_reads() -> None:
    text = convert("broken.html")
    assert_lines_in_order(
        text,
        "First paragraph with bold and italic misnested text",
        "Second paragraph, never closed",
        "cell one | cell two",
        "cell three",
        "- item A",
        "- item B",
    )
    assert "stray & ampersand, a < lone bracket" in text
    assert "(https://example.com/x)" in text
    assert "comment that never ends" not in text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("plain words, no tags", "plain words, no tags"),
        ("https://example.com/only-a-url", "https://example.com/only-a-url"),
        ("<p>a</p><p>b</p>", "a\n\nb"),
        ("a<br>b<br><br>c", "a\nb\n\nc"),
        ("<ol start=3><li>c</li><li>d</li></ol>", "3. c\n4. d"),
        ("<ol start=x><li>c</li></ol>", "1. c"),
        ("<p>x&nbsp;&nbsp; y\n\t z</p>", "x y z"),
        ("<a href='https://e.com/a'>site</a>", "site (https://e.com/a)"),
        ("<a href='mailto:bob@e.com?subject=hi'>Bob</a>", "Bob (bob@e.com)"),
        ("<a href='javascript:alert(1)'>click</a>", "click"),
        ("<a href='#top'>top</a>", "top"),
        ("<img alt='Company logo' src='x.png'>", "[Company logo]"),
        ("<pre>  indented\n    code</pre>", "  indented\n    code"),
        ("<p>a</p><hr><p>b</p>", "a\n\n---\n\nb"),
        ("<div hidden>secret</div>shown", "shown"),
        ("x\u200by\u200c\ufeffz", "xyz"),
        ("<script>alert(1)</script><style>p{}</style>ok", "ok"),
        ("<!--[if mso]><p>outlook only</p><![endif]-->everyone", "everyone"),
        ("<table><tr><td></td><td>  </td></tr></table>", ""),
    ],
)
def test_small_shapes(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_a_link_around_blocks_keeps_their_lines() -> None:
    # An `<a>` never closed: the parser stretches it over the rest of the body, paragraphs and all.
    unclosed = (
        "<p>See <a href='https://example.com/x'>the report<p>Totals are up.<p>Call me, "
        "<a href='https://e.com/cal'>book here</a></p><p>Bob</p>"
    )
    assert html_to_text(unclosed) == (
        "See the report (https://example.com/x)\n\nTotals are up.\n\n"
        "Call me, book here (https://e.com/cal)\n\nBob"
    )
    # A newsletter's card: a link around a heading and its text, then what follows it.
    card = "<a href='https://shop.example/sale'><div><h2>Big sale</h2><p>All 50% off</p></div></a>Terms apply"
    assert html_to_text(card) == "Big sale (https://shop.example/sale)\n\nAll 50% off\nTerms apply"


def test_inline_data_images_do_not_count_against_the_cap() -> None:
    image = "data:image/png;base64," + "iVBORw0KGgo" * 600_000  # about 6.6 MB
    html = f"<p>Before</p><img src='{image}' alt='chart'><p>After</p>"
    assert html_to_text(html, max_chars=10_000) == "Before\n\n[chart]\n\nAfter"


def test_a_5_mb_body_is_cut_at_the_cap_with_a_marker() -> None:
    row = "<tr><td>2024-03-02</td><td>Coffee <b>beans</b></td><td>€38.00</td></tr>\n"
    html = "<table>" + row * (5_000_000 // len(row)) + "</table>"
    assert len(html) > 4_900_000
    text = html_to_text(html)
    assert text.startswith("2024-03-02 | Coffee beans | €38.00\n2024-03-02 | Coffee beans | €38.00\n")
    assert text.endswith(truncation_marker(len(html), DEFAULT_MAX_CHARS))
    converted = text.count("Coffee beans")
    assert DEFAULT_MAX_CHARS // len(row) - 1 <= converted <= DEFAULT_MAX_CHARS // len(row) + 1


def test_a_small_cap_is_respected() -> None:
    text = html_to_text("<p>" + "word " * 1000 + "</p>", max_chars=100)
    assert text.endswith("[Mailroom: body truncated: 5,007 characters of HTML, converted the first 100]")
    assert len(text) < 250


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 50_000 + "deep text" + "</div>" * 50_000,
        "<blockquote>" * 3_000 + "deep quote" + "</blockquote>" * 3_000,
        "<ul><li>" * 3_000 + "deep item" + "</li></ul>" * 3_000,
        "<table><tr><td>" * 2_000 + "deep cell" + "</td></tr></table>" * 2_000,
        "<a href='https://e.com'>" * 5_000 + "deep link",
        "<span>" * 20_000 + "deep span",
    ],
)
def test_deep_nesting_never_overflows_the_stack(html: str) -> None:
    text = html_to_text(html)
    assert "deep" in text
    assert len(text) < 10_000


def test_tidy_text_cleans_plain_bodies() -> None:
    assert tidy_text("Hi\r\n\r\n\r\n\r\nthere  \r\n\ufeffbye\n\n") == "Hi\n\nthere\nbye"
