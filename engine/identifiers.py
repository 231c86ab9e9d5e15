"""The alphabet and length of every identifier a caller names: customer, agent, ticket and
skill ids, and idempotency keys.

An identifier is 1 to :data:`MAX_ID_CHARS` characters, every one printable (Python's
``str.isprintable``: no control characters such as NUL or a newline, no line or paragraph
separators), with no whitespace at either end. Any other Unicode is allowed (names in any
script). The rule is checked where a command is decided, so a refused identifier changes
nothing; what is already journaled is never checked again on replay. O(length).
"""

from __future__ import annotations

from surgedesk.engine.errors import InvalidArgument

MAX_ID_CHARS = 128
ALPHABET = ("1..128 printable characters (no control characters such as NUL or newline), "
            "no whitespace at either end")


def check_id(name: str, value: object, *, allow_empty: bool = False) -> None:
    """Raise InvalidArgument naming ``name`` unless ``value`` is an identifier."""
    if not isinstance(value, str):
        raise InvalidArgument(name, "must be text")
    if not value:
        if allow_empty:
            return
        raise InvalidArgument(name, "must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(name, f"must be at most {MAX_ID_CHARS} characters")
    if not value.isprintable() or value != value.strip():
        raise InvalidArgument(name, f"must be {ALPHABET}")
