"""Untrusted text (token text, model and data names, point and metric labels) made inert in
Markdown, so a token like `<img src=x onerror=alert(1)>` or a backtick shows as text in any viewer.

report.md and compare.md use `markdown_text` for every such piece; report.html uses `html.escape`.
"""

from __future__ import annotations

from urllib.parse import quote

#: HTML first (a viewer passes raw HTML through), then the characters that open Markdown inline
#: markup: code, emphasis, links and images (with [ and ] inert, "(" and "!" cannot form one),
#: table cells, headings' closing #s, GFM strikethrough, math; each is escaped one at a time
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKDOWN_SPECIALS = "\\`*_[]|#~$"


def markdown_text(text: object) -> str:
    """`text` as Markdown that renders exactly as `text`, on one line, with no live HTML.

    Safe in a paragraph, a heading and a table cell; not inside a code span (use
    `markdown_code` there: backslash escapes do not work in code spans).
    """
    out = []
    for char in str(text):
        if char in _HTML:
            out.append(_HTML[char])
        elif char in _MARKDOWN_SPECIALS:
            out.append("\\" + char)
        elif char in "\r\n":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def markdown_code(text: object) -> str:
    """`text` in monospace: an inline `<code>` element whose content is `markdown_text`."""
    return f"<code>{markdown_text(text)}</code>"


def markdown_path(path: str) -> str:
    """A relative link target (an image file named after a point and a metric), percent-encoded
    so parentheses, spaces or angle brackets in a name cannot end the link early."""
    return quote(path, safe="/")
