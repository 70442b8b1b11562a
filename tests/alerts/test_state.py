"""The lifecycle as a pure function: properties over many value sequences (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ioc.alerts.state import Condition, breached, clear_on_right_side, decide

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LOW = Condition("<", 0.90, 0.95, 0, no_data_fires=False)


def run(cond: Condition, values: list[float | None], *, errors: bool = False) -> list[str]:
    """Feed values one second apart; return the notifications decided."""
    state, pending, sent = "ok", None, []
    for i, value in enumerate(values):
        d = decide(cond, state, pending, value, T0 + timedelta(seconds=i), error=errors)
        state, pending = d.state, d.pending_since
        if d.notify:
            sent.append(d.notify)
    return sent


@given(st.lists(st.floats(min_value=0.9, max_value=0.95, exclude_max=True), max_size=50))
def test_flapping_inside_the_band_after_firing_notifies_nothing(band: list[float]) -> None:
    assert run(LOW, [0.5, *band]) == ["firing"]


@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=30))
def test_evaluation_errors_never_notify(values: list[float | None]) -> None:
    assert run(Condition("<", 0.9, 0.9, 0, no_data_fires=True), values, errors=True) == []


@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=1, max_size=40))
def test_notifications_alternate_firing_then_resolved(values: list[float | None]) -> None:
    sent = run(LOW, values)
    assert sent == ["firing", "resolved"] * (len(sent) // 2) + ["firing"] * (len(sent) % 2)


def test_no_data_never_resolves_a_firing_alert() -> None:
    assert run(LOW, [0.5, None, None, 0.92, None]) == ["firing"]
    assert run(LOW, [0.5, None, 0.96]) == ["firing", "resolved"]


def test_for_seconds_counts_from_the_first_breach() -> None:
    slow = Condition(">", 0, 0, 3, no_data_fires=False)
    assert run(slow, [1, 2, 3]) == []  # held 2 s
    assert run(slow, [1, 2, 3, 4]) == ["firing"]  # held 3 s
    assert run(slow, [1, 2, 0, 3, 4, 5]) == []  # the dip restarts the clock
    assert run(slow, [1, None, 2, 3, 4]) == []  # so does no data


def test_comparisons_and_clear_side() -> None:
    assert [breached(op, 5, 5) for op in ("<", "<=", ">", ">=")] == [False, True, False, True]
    assert clear_on_right_side("<", 0.9, 0.95) and not clear_on_right_side("<", 0.9, 0.85)
    assert clear_on_right_side(">=", 10, 8) and not clear_on_right_side(">=", 10, 12)
