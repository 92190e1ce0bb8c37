"""Text from outside (a link's values, a file's name, a refusal sentence that
quotes a file) shown inside Streamlit Markdown must stay text: no links, no
images, no LaTeX, no colours. `escape_markdown` makes it so."""
from __future__ import annotations

import re

# Backslash-escapable in CommonMark; Streamlit adds $ (LaTeX) and :colour[...] (needs brackets).
_SPECIAL = re.compile(r"([\\`*\[\]<>$~|#!{}])")
# GFM links bare URLs and e-mail addresses even when escaped; an invisible word joiner
# (U+2060) inside "://", "www." and before "@" stops that and changes nothing on screen.
_AUTOLINK = re.compile(r"(?i)(:)(//)|\b(www)(\.)|()(@)")
_JOINER = "\u2060"


def escape_markdown(text: str) -> str:
    """`text` as Markdown that renders as exactly that text (underscores are
    left alone: GFM does not emphasize inside words, and names like
    `batch_size` stay searchable in the source)."""
    text = _SPECIAL.sub(r"\\\1", str(text))
    return _AUTOLINK.sub(lambda m: _JOINER.join(g for g in m.groups() if g is not None), text)


__all__ = ["escape_markdown"]
