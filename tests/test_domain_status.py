"""The action status rule (domain/status.py): expected vs. actual progress, every band and its edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.status import action_status, actual_progress, due_datetime, expected_progress
from schemas.outcomes import Direction, Metric
from schemas.status import ActionStatus
from tests.strategies import examples

ASSIGNED = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
DUE = ASSIGNED + timedelta(days=100)
HALFWAY = ASSIGNED + timedelta(days=50)
UP = Metric(name="Net revenue retention", unit="%", baseline=0, target=100, direction=Direction.increase)
DOWN = Metric(name="Churn", unit="%", baseline=100, target=80, direction=Direction.decrease)
# Worst to best, so a property can say "never worse".
RANK = [ActionStatus.at_risk, ActionStatus.behind, ActionStatus.on_track, ActionStatus.achieved]


def status(metric: Metric, value: float | None, at: datetime = HALFWAY) -> ActionStatus:
    return action_status(metric, value, ASSIGNED, DUE, at)


# -------------------------------------------------------------------------------------- progress


def test_expected_progress_grows_linearly_and_is_clamped() -> None:
    assert expected_progress(ASSIGNED, DUE, ASSIGNED) == 0
    assert expected_progress(ASSIGNED, DUE, HALFWAY) == 0.5
    assert expected_progress(ASSIGNED, DUE, ASSIGNED + timedelta(days=25)) == 0.25
    assert expected_progress(ASSIGNED, DUE, DUE) == 1
    assert expected_progress(ASSIGNED, DUE, ASSIGNED - timedelta(days=3)) == 0
    assert expected_progress(ASSIGNED, DUE, DUE + timedelta(days=30)) == 1


def test_expected_progress_when_due_at_assignment() -> None:
    assert expected_progress(ASSIGNED, ASSIGNED, ASSIGNED - timedelta(seconds=1)) == 0
    assert expected_progress(ASSIGNED, ASSIGNED, ASSIGNED) == 1


def test_actual_progress_is_sign_aware() -> None:
    assert actual_progress(UP, 25) == 0.25
    assert actual_progress(UP, -10) == -0.1
    assert actual_progress(DOWN, 90) == 0.5  # churn fell half-way to the target
    assert actual_progress(DOWN, 110) == -0.5  # churn rose: away from the target
    assert actual_progress(DOWN, 70) == 1.5


# -------------------------------------------------------------------------------------- bands


def test_no_data_before_the_first_value() -> None:
    assert status(UP, None) is ActionStatus.no_data
    assert status(DOWN, None, at=DUE + timedelta(days=9)) is ActionStatus.no_data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (100, ActionStatus.achieved),  # actual = 1
        (130, ActionStatus.achieved),
        (50, ActionStatus.on_track),  # ratio 1
        (47.5, ActionStatus.on_track),  # ratio 0.95 exactly: the edge belongs to on_track
        (47.49, ActionStatus.behind),
        (45, ActionStatus.behind),  # ratio 0.9
        (42.5, ActionStatus.behind),  # ratio 0.85 exactly: the edge belongs to behind
        (42.49, ActionStatus.at_risk),
        (10, ActionStatus.at_risk),
        (-5, ActionStatus.at_risk),
    ],
)
def test_increase_bands_halfway(value: float, expected: ActionStatus) -> None:
    assert status(UP, value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (80, ActionStatus.achieved),  # reached the lower target
        (75, ActionStatus.achieved),
        (90, ActionStatus.on_track),  # ratio 1
        (90.5, ActionStatus.on_track),  # actual 0.475: ratio 0.95
        (90.6, ActionStatus.behind),
        (91.5, ActionStatus.behind),  # actual 0.425: ratio 0.85
        (91.6, ActionStatus.at_risk),
        (100, ActionStatus.at_risk),  # no progress at all
        (104, ActionStatus.at_risk),  # moving the wrong way
    ],
)
def test_decrease_bands_halfway(value: float, expected: ActionStatus) -> None:
    assert status(DOWN, value) is expected


def test_at_assignment_nothing_is_expected_yet() -> None:
    assert status(UP, 0, at=ASSIGNED) is ActionStatus.on_track
    assert status(UP, 3, at=ASSIGNED) is ActionStatus.on_track
    assert status(UP, -1, at=ASSIGNED) is ActionStatus.at_risk
    assert status(DOWN, 101, at=ASSIGNED) is ActionStatus.at_risk
    assert status(DOWN, 100, at=ASSIGNED - timedelta(hours=1)) is ActionStatus.on_track


def test_after_the_due_date_the_whole_target_is_expected() -> None:
    late = DUE + timedelta(days=10)
    assert status(UP, 99, at=late) is ActionStatus.on_track
    assert status(UP, 90, at=late) is ActionStatus.behind
    assert status(UP, 80, at=late) is ActionStatus.at_risk
    assert status(UP, 100, at=late) is ActionStatus.achieved


def test_edges_survive_float_arithmetic() -> None:
    # Decimal steps are not exact in binary: (0.695 - 0.6) / (0.8 - 0.6) / 0.5 is 0.9499999999999994. A value
    # reported at exactly 95% (or 85%) of the expected progress must still land in the better band.
    on_edge = Metric(name="Gross margin", unit="ratio", baseline=0.6, target=0.8, direction=Direction.increase)
    assert status(on_edge, 0.695) is ActionStatus.on_track
    behind_edge = Metric(name="Index", unit="pts", baseline=1.0, target=1.2, direction=Direction.increase)
    assert status(behind_edge, 1.085) is ActionStatus.behind


# -------------------------------------------------------------------------------------- properties

metrics = st.one_of(
    st.builds(
        lambda b, d: Metric(name="m", unit="u", baseline=b, target=b + d, direction=Direction.increase),
        st.floats(-1e6, 1e6),
        st.floats(0.01, 1e6),
    ),
    st.builds(
        lambda b, d: Metric(name="m", unit="u", baseline=b, target=b - d, direction=Direction.decrease),
        st.floats(-1e6, 1e6),
        st.floats(0.01, 1e6),
    ),
)
fractions = st.floats(-0.5, 1.5)


@settings(max_examples=examples(200), deadline=None)
@given(metrics, fractions, fractions, st.floats(0, 1.2))
def test_more_progress_is_never_a_worse_status(metric: Metric, p1: float, p2: float, time_fraction: float) -> None:
    # p1/p2 are progress fractions; the value moves towards the target in either direction.
    at = ASSIGNED + (DUE - ASSIGNED) * time_fraction
    low, high = sorted((p1, p2))
    span = metric.target - metric.baseline
    worse = status(metric, metric.baseline + low * span, at=at)
    better = status(metric, metric.baseline + high * span, at=at)
    assert RANK.index(worse) <= RANK.index(better)


@settings(max_examples=examples(200), deadline=None)
@given(metrics, fractions, st.floats(0, 1.2), st.floats(0, 1.2))
def test_time_passing_never_improves_a_status(metric: Metric, progress: float, t1: float, t2: float) -> None:
    early, late = sorted((t1, t2))
    value = metric.baseline + progress * (metric.target - metric.baseline)
    before = status(metric, value, at=ASSIGNED + (DUE - ASSIGNED) * early)
    after = status(metric, value, at=ASSIGNED + (DUE - ASSIGNED) * late)
    assert RANK.index(after) <= RANK.index(before)


@settings(max_examples=examples(200), deadline=None)
@given(metrics, st.floats(-1.5, 2.5), st.floats(0.01, 1.2))
def test_status_is_the_band_of_the_ratio(metric: Metric, progress: float, time_fraction: float) -> None:
    at = ASSIGNED + (DUE - ASSIGNED) * time_fraction
    value = metric.baseline + progress * (metric.target - metric.baseline)
    actual = actual_progress(metric, value)
    ratio = actual / expected_progress(ASSIGNED, DUE, at)
    result = status(metric, value, at=at)
    # Away from the edges (where float rounding decides), the band is unambiguous.
    if actual > 1 + 1e-6:
        assert result is ActionStatus.achieved
    elif actual < 1 - 1e-6 and ratio > 0.95 + 1e-6:
        assert result is ActionStatus.on_track
    elif actual < 1 - 1e-6 and 0.85 + 1e-6 < ratio < 0.95 - 1e-6:
        assert result is ActionStatus.behind
    elif ratio < 0.85 - 1e-6:
        assert result is ActionStatus.at_risk


# -------------------------------------------------------------------------------------- due date


@pytest.mark.parametrize(
    ("due", "tz", "end"),
    [
        (date(2027, 3, 15), "Europe/Berlin", datetime(2027, 3, 15, 23, 0, tzinfo=UTC)),  # CET, +1
        (date(2027, 3, 27), "Europe/Berlin", datetime(2027, 3, 27, 23, 0, tzinfo=UTC)),  # midnight still CET
        (date(2027, 3, 28), "Europe/Berlin", datetime(2027, 3, 28, 22, 0, tzinfo=UTC)),  # now CEST, +2
        (date(2027, 3, 4), "America/Sao_Paulo", datetime(2027, 3, 5, 3, 0, tzinfo=UTC)),
        (date(2027, 6, 30), "Asia/Kolkata", datetime(2027, 6, 30, 18, 30, tzinfo=UTC)),
        # Chile springs forward at midnight: 00:00 on the 5th does not exist, the day ends at 01:00 -03.
        (date(2027, 9, 4), "America/Santiago", datetime(2027, 9, 5, 4, 0, tzinfo=UTC)),
    ],
)
def test_due_datetime_is_the_next_local_midnight(due: date, tz: str, end: datetime) -> None:
    result = due_datetime(due, tz)
    assert result == end
    assert result.utcoffset() == timedelta(0)


def test_an_action_is_still_on_time_late_on_its_due_date() -> None:
    end = due_datetime(date(2027, 3, 15), "America/New_York")
    late_evening = datetime(2027, 3, 16, 3, 30, tzinfo=UTC)  # 23:30 EDT on the 15th
    assert late_evening < end
    assert expected_progress(ASSIGNED, end, late_evening) < 1
