"""Making names from a model safe to show: terminal, Graphviz DOT, XML (GraphML, GEXF, SVG).

Module paths and tensor names are user data: `setattr(model, "a\\x1b[2J", layer)` and dict
keys make any string a name. Each writer escapes them for its own syntax here.
"""

from __future__ import annotations

import html
import re

# C0/C1 control characters, DEL, the bidirectional overrides (they reorder the text shown
# around them) and lone surrogates (unencodable in UTF-8).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_char(match: re.Match) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def terminal_safe(text: str) -> str:
    """`text` with control characters, bidi overrides and lone surrogates written as `\\x1b`."""
    return _UNSAFE.sub(_escape_char, text)


def one_line_safe(text: str) -> str:
    """An error message on one line: newlines become spaces, other control chars escapes."""
    return terminal_safe(" ".join(str(text).split()))


def xml_safe(text: str) -> str:
    """`text` made legal in XML 1.0 character data: control characters (illegal even as
    references) and lone surrogates are written as `\\x01`; `<`, `&` are left to the writer."""
    return _UNSAFE.sub(lambda m: m.group() if m.group() in "\t\n\r" else _escape_char(m), text)


def html_text(text: str) -> str:
    """`text` for HTML/SVG/Graphviz HTML-like labels: escaped markup, no control chars."""
    return html.escape(terminal_safe(text), quote=True)


def dot_text(text: str) -> str:
    """`text` for a quoted Graphviz record or plain label: no escape sequences survive.

    Graphviz reads `\\n`, `\\l`, `\\r`, `\\N`, `\\G` and `\\"` inside quoted strings; doubling
    the backslash and escaping the quote keeps the name as written.
    """
    return terminal_safe(text).replace("\\", "\\\\").replace('"', '\\"')
