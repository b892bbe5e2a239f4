"""Sentence spans, shared by negation and the case-report reader."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_NOT_AN_END = re.compile(r"\b(?:e\.g|i\.e|et al|Fig|Figs|vs|approx|ca|No|Dr|Mr|Mrs|Ms|St|cf|resp)\.$")


def sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` (abbreviations such as "e.g." and "Fig." do not end one)."""
    end = len(text) if end is None else end
    spans, begin = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        if "\n" not in m.group() and _NOT_AN_END.search(text, begin, m.start()):
            continue
        if m.start() > begin:
            spans.append((begin, m.start()))
        begin = m.end()
    if begin < end:
        spans.append((begin, end))
    return spans
