"""The identifier rule (engine/identifiers.py): what a caller may name a customer, agent,
ticket or skill, and an idempotency key."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.identifiers import MAX_ID_CHARS, check_id


@given(st.text(min_size=1, max_size=MAX_ID_CHARS))
def test_printable_names_without_outer_whitespace_are_identifiers(value):
    ok = value.isprintable() and value == value.strip()
    try:
        check_id("skill", value)
    except InvalidArgument as exc:
        assert not ok and exc.field == "skill"
    else:
        assert ok


def test_what_is_refused_and_why():
    for value, problem in [("", "empty"), ("x" * 129, "at most 128"), ("nope\x00\n", "printable"),
                           (" presale", "whitespace"), ("a\u2028b", "printable"),
                           (7, "text")]:
        with pytest.raises(InvalidArgument, match=problem):
            check_id("skill", value)
    check_id("idempotency_key", "", allow_empty=True)
    check_id("customer_id", "客户-42 Ünïcode")  # any script
