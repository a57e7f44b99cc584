"""Characters that must never reach a file name or a log line as they are.

C0 controls and DEL, C1 controls (U+0080-U+009F, among them NEL, which ``str.splitlines`` breaks
at), the line and paragraph separators, and the bidirectional formatting characters that make a
name read differently from what it is (U+202A-U+202E, U+2066-U+2069).
"""

from __future__ import annotations

import re

UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_unsafe(text: str) -> str:
    """``text`` with every unsafe character written as a visible escape (``\\x85``, ``\\u202e``)."""
    return UNSAFE_CHARACTERS.sub(_escaped, text)
