"""How a message that quotes what a user gave is shown: on one line, printable, of a readable length.

A bad argument can be 100 kB long or hold terminal control characters; an error message quotes it.
The command line and the app show every such message through :func:`one_line`.
"""

from __future__ import annotations

import re

#: longer messages keep their beginning and end (the quoted input, what to do) around a marker
MAX_MESSAGE_CHARS = 400
_WHITESPACE = re.compile(r"\s+")


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line: runs of whitespace (newlines, tabs) become one space, other control
    characters are written as escapes (``\\x1b``), and past ``limit`` characters the middle is
    left out, with how much."""
    text = _WHITESPACE.sub(" ", str(text)).strip()
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    if len(text) <= limit:
        return text
    keep = (limit - 40) // 2
    return f"{text[:keep]} … ({len(text) - 2 * keep:,} characters left out) … {text[-keep:]}"
