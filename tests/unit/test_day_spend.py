"""streams.day_spend against the plain `{scope: {period, spend_nanousd}}` dict it replaced."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streams.day_spend import DaySpend

SCOPES = st.sampled_from(
    ["global", "user:a", "user:b", "user:a\x00b", "tag:feature=uvp", "service:gen"]
)
DAYS = st.sampled_from(["2026-11-30", "2026-12-01", "2026-12-02"])
ADD = st.tuples(st.just("add"), SCOPES, DAYS, st.integers(0, 10**12))
RESTORE = st.tuples(
    st.just("restore"),
    SCOPES,
    st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {"period": DAYS, "spend_nanousd": st.integers(0, 10**12)},
            optional={"fired": st.just([0.5])},
        ),
    ),
)
EXPIRE = st.tuples(st.just("expire"), DAYS)


def _reference(ops: list[tuple[Any, ...]]) -> tuple[dict[str, dict[str, Any]], list[Any]]:
    rows: dict[str, dict[str, Any]] = {}
    answers: list[Any] = []
    for op in ops:
        if op[0] == "add":
            _, scope, day, nanos = op
            row = rows.get(scope)
            if row is not None and row["period"] > day:
                answers.append(False)
                continue
            if row is None or row["period"] < day:
                rows[scope] = {"period": day, "spend_nanousd": 0}
            rows[scope]["spend_nanousd"] += nanos
            answers.append(True)
        elif op[0] == "restore":
            _, scope, row = op
            if row is None:
                rows.pop(scope, None)
            else:
                rows[scope] = dict(row)
        else:
            gone = sorted(s for s, row in rows.items() if row["period"] < op[1])
            for scope in gone:
                del rows[scope]
            answers.append(gone)
    return rows, answers


@given(st.lists(st.one_of(ADD, RESTORE, EXPIRE), max_size=60))
def test_answers_and_rows_as_the_plain_dict(ops: list[tuple[Any, ...]]) -> None:
    spend = DaySpend()
    answers: list[Any] = []
    for op in ops:
        if op[0] == "add":
            answers.append(spend.add(op[1], op[2], op[3]))
        elif op[0] == "restore":
            spend.restore(op[1], op[2])
        else:
            answers.append(sorted(spend.expire(op[1])))
    rows, expected = _reference(ops)
    assert answers == expected
    assert {scope: spend.row(scope) for scope in rows} == rows
    assert len(spend) == len(rows)
    for scope in ("global", "user:a", "user:b", "user:a\x00b", "tag:feature=uvp", "service:gen"):
        if scope not in rows:
            assert spend.row(scope) is None


def test_expire_keeps_today_and_forgets_the_rest() -> None:
    spend = DaySpend()
    spend.add("user:a", "2026-12-01", 5)
    spend.restore("user:b", {"period": "2026-12-01", "spend_nanousd": 7, "fired": [0.5]})
    spend.add("user:c", "2026-12-02", 3)
    assert sorted(spend.expire("2026-12-02")) == ["user:a", "user:b"]
    assert spend.row("user:b") is None and spend.row("user:a") is None
    assert spend.row("user:c") == {"period": "2026-12-02", "spend_nanousd": 3}
    assert len(spend) == 1 and spend.expire("2026-12-02") == []
