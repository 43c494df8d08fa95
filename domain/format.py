"""Which engagement format fits a scoping: leadership offsite, strategy session, or both combined.

The rules and every sentence of the rationale come from the seed's comparison table (purpose, duration,
participants, focus, location, outcome), so a consultant can check the recommendation against the table row
by row. The rules live here and nowhere else: the CLI, the workflow and the choose_format validator call them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from domain.agenda import agenda_modules, build_agenda
from schemas.recommendation import (
    Aspect,
    EngagementFormat,
    Module,
    RationaleEntry,
    Recommendation,
    Venue,
)
from schemas.scoping import Constraints, Location, ObjectiveKind, Role, Scoping

# Relationship needs: what a leadership offsite is for (team building, trust, culture, vision alignment).
OFFSITE_KINDS: frozenset[ObjectiveKind] = frozenset(
    {ObjectiveKind.cohesion, ObjectiveKind.trust, ObjectiveKind.culture, ObjectiveKind.vision}
)
# Business-direction needs: what a strategy session is for (plans, goals, problems, market, metrics).
STRATEGY_KINDS: frozenset[ObjectiveKind] = frozenset(
    {
        ObjectiveKind.planning,
        ObjectiveKind.goals,
        ObjectiveKind.problem_solving,
        ObjectiveKind.market,
        ObjectiveKind.competition,
        ObjectiveKind.performance,
    }
)

# The seed's duration row: offsites 1-3 days, strategy sessions "several hours" (0.125 day) to 2 days; a
# combined engagement is an offsite long enough to host a strategy session inside it.
_DURATIONS: dict[EngagementFormat, tuple[float, float]] = {
    EngagementFormat.offsite: (1.0, 3.0),
    EngagementFormat.strategy_session: (0.125, 2.0),
    EngagementFormat.combined: (2.0, 3.0),
}
# What a consultant would propose when the client's time allows it: a two-day offsite leaves an evening for
# relationships, one day is the classic strategy session, three days give both halves of a combined one a day.
_PREFERRED_DAYS: dict[EngagementFormat, float] = {
    EngagementFormat.offsite: 2.0,
    EngagementFormat.strategy_session: 1.0,
    EngagementFormat.combined: 3.0,
}
_NEEDS_OFFSITE_VENUE = frozenset({EngagementFormat.offsite, EngagementFormat.combined})
# The seed's participants row for offsites; facilitators run the session, so they always come along.
_OFFSITE_ROLES = frozenset({Role.executive, Role.senior_leader, Role.facilitator})
_LEADER_ROLES = frozenset({Role.executive, Role.senior_leader})

_LABELS = {
    EngagementFormat.offsite: "leadership offsite",
    EngagementFormat.strategy_session: "strategy session",
    EngagementFormat.combined: "leadership offsite hosting a strategy session",
}

# The seed's comparison table, row by row, in the words the rationale quotes.
_OFFSITE_ROW = {
    Aspect.purpose: "team building, leadership alignment and culture development",
    Aspect.duration: "1-3 days",
    Aspect.participants: "senior leaders and executives",
    Aspect.focus: "relationship building and vision alignment",
    Aspect.location: "offsite venues and retreats",
    Aspect.outcome: "stronger leadership cohesion and cultural reinforcement",
}
_STRATEGY_ROW = {
    Aspect.purpose: "strategic planning, goal setting and problem solving",
    Aspect.duration: "several hours to 2 days",
    Aspect.participants: "the leadership team and department heads",
    Aspect.focus: "actionable plans and performance metrics",
    Aspect.location: "onsite or offsite meeting rooms",
    Aspect.outcome: "defined strategies and clear roadmaps",
}

_ROLE_NAMES = {
    Role.executive: ("executive", "executives"),
    Role.senior_leader: ("senior leader", "senior leaders"),
    Role.department_head: ("department head", "department heads"),
    Role.manager: ("manager", "managers"),
    Role.facilitator: ("facilitator", "facilitators"),
}


# ---------------------------------------------------------------------------------------------- wording


def _num(value: float) -> str:
    return f"{value:g}"


def _days(value: float) -> str:
    return f"{_num(value)} day" if value <= 1 else f"{_num(value)} days"


def _join(words: Iterable[str]) -> str:
    items = list(words)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _kinds(kinds: Iterable[ObjectiveKind]) -> str:
    # Enum order, not set order: the same scoping must always give the same sentence.
    present = set(kinds)
    return _join(k.value.replace("_", " ") for k in ObjectiveKind if k in present)


def _roles(scoping: Scoping) -> str:
    counts = Counter(p.role for p in scoping.participants)
    return _join(f"{counts[r]} {_ROLE_NAMES[r][counts[r] != 1]}" for r in Role if counts[r])


def _modules(modules: list[Module]) -> str:
    return _join(m.value.replace("_", " ") for m in modules)


def _row(fmt: EngagementFormat, aspect: Aspect) -> str:
    if fmt is EngagementFormat.offsite:
        return _OFFSITE_ROW[aspect]
    if fmt is EngagementFormat.strategy_session:
        return _STRATEGY_ROW[aspect]
    if aspect is Aspect.duration:
        # Not the union of both rows: the strategy session happens inside the offsite's days.
        return (
            f"2-3 days, an offsite ({_OFFSITE_ROW[aspect]}) long enough to host "
            f"a strategy session ({_STRATEGY_ROW[aspect]})"
        )
    return f"{_OFFSITE_ROW[aspect]} as well as {_STRATEGY_ROW[aspect]}"


# ---------------------------------------------------------------------------------------------- rules


def duration_range(fmt: EngagementFormat) -> tuple[float, float]:
    """The seed's duration range for a format, in days."""
    return _DURATIONS[fmt]


def format_fit_error(fmt: EngagementFormat, constraints: Constraints) -> str | None:
    """None when `fmt` can be held under `constraints`, else one sentence naming the field that forbids it."""
    shortest, _ = duration_range(fmt)
    if constraints.max_days < shortest:
        return f"{fmt.value} needs at least {_days(shortest)} but constraints.max_days is {_num(constraints.max_days)}"
    if fmt in _NEEDS_OFFSITE_VENUE and constraints.location is Location.onsite:
        return f"{fmt.value} needs an offsite venue but constraints.location is {constraints.location.value}"
    return None


def _has_leaders(scoping: Scoping) -> bool:
    return any(p.role in _LEADER_ROLES for p in scoping.participants)


def _decide(scoping: Scoping) -> tuple[EngagementFormat, str]:
    """The format the rules pick, and why, in one clause about this scoping."""
    c = scoping.constraints
    kinds = [o.kind for o in scoping.objectives]
    offsite_kinds = [k for k in kinds if k in OFFSITE_KINDS]
    strategy_kinds = [k for k in kinds if k in STRATEGY_KINDS]
    if c.location is Location.onsite:
        return EngagementFormat.strategy_session, (
            "constraints.location is onsite, and only a strategy session works without an offsite venue"
        )
    if c.max_days < 1:
        return EngagementFormat.strategy_session, (
            f"constraints.max_days is {_num(c.max_days)}, under the 1 day an offsite needs at the least, "
            "so a strategy session of a few hours is what fits"
        )
    if not strategy_kinds:
        return (
            EngagementFormat.offsite,
            f"every objective is about {_kinds(offsite_kinds)}, the leadership side",
        )
    if not offsite_kinds:
        return EngagementFormat.strategy_session, (
            f"every objective is about {_kinds(strategy_kinds)}, the business-direction side"
        )
    both = (
        f"the objectives show strong needs on both sides ({_kinds(offsite_kinds)} on the leadership side, "
        f"{_kinds(strategy_kinds)} on the strategy side)"
    )
    if c.max_days >= 2:
        return EngagementFormat.combined, (
            f"{both} and constraints.max_days ({_num(c.max_days)}) leaves room for an offsite "
            "that hosts a strategy session"
        )
    # Not enough time for both halves: the side with more objectives gets the session.
    short = f"{both} but constraints.max_days ({_num(c.max_days)}) is under the 2 days a combined one needs"
    if len(offsite_kinds) != len(strategy_kinds):
        fmt = (
            EngagementFormat.offsite if len(offsite_kinds) > len(strategy_kinds) else EngagementFormat.strategy_session
        )
        larger = max(len(offsite_kinds), len(strategy_kinds))
        return fmt, f"{short}, and {larger} of the {len(kinds)} objectives call for a {_LABELS[fmt]}"
    # A tie: with executives or senior leaders in the room, their alignment is what the others depend on.
    if _has_leaders(scoping):
        return EngagementFormat.offsite, (
            f"{short}, the objectives are evenly split, and executives or senior leaders take part, "
            "so their alignment comes first"
        )
    return EngagementFormat.strategy_session, (
        f"{short}, the objectives are evenly split, and no executive or senior leader takes part"
    )


def recommended_format(scoping: Scoping) -> EngagementFormat:
    """The format the rules pick for this scoping (see `recommend` for the whole recommendation)."""
    return _decide(scoping)[0]


def participants_for(fmt: EngagementFormat, scoping: Scoping) -> list[str]:
    """Emails of the participants the format calls for, in scoping order; never empty.

    An offsite is for executives and senior leaders (and its facilitators); when the scoping names none, the
    offsite is for the whole group rather than for nobody. Strategy work needs everyone who may own an action.
    """
    everyone = [p.email for p in scoping.participants]
    if fmt is not EngagementFormat.offsite or not _has_leaders(scoping):
        return everyone
    return [p.email for p in scoping.participants if p.role in _OFFSITE_ROLES]


def _day_range(fmt: EngagementFormat, constraints: Constraints) -> tuple[float, float, float]:
    """(min_days, max_days, days): the seed range clipped to the client's time, and the suggested length."""
    shortest, longest = duration_range(fmt)
    max_days = min(longest, constraints.max_days)
    min_days = min(shortest, max_days)
    days = min(_PREFERRED_DAYS[fmt], max_days)
    return min_days, max_days, days


def _venue(fmt: EngagementFormat, constraints: Constraints) -> Venue:
    # Strategy sessions work in onsite rooms (the simpler choice) unless the client asked to get away.
    if fmt in _NEEDS_OFFSITE_VENUE or constraints.location is Location.offsite:
        return Venue.offsite
    return Venue.onsite


# ---------------------------------------------------------------------------------------------- rationale


def _duration_reason(fmt: EngagementFormat, scoping: Scoping, span: tuple[float, float, float]) -> str:
    min_days, max_days, days = span
    window = _days(max_days) if min_days == max_days else f"{_num(min_days)} to {_days(max_days)}"
    return (
        f"A {_LABELS[fmt]} runs {_row(fmt, Aspect.duration)}; constraints.max_days is "
        f"{_num(scoping.constraints.max_days)}, so {scoping.client} can give it {window}, "
        f"and {_days(days)} is suggested."
    )


def _participants_reason(fmt: EngagementFormat, scoping: Scoping, invited: list[str]) -> str:
    group = f"{scoping.client}'s {len(scoping.participants)} participants ({_roles(scoping)})"
    # Strategy work ends in actions, and whoever may own one should hear the decisions first-hand.
    everyone = f"every future action owner should hear the decisions first-hand: all of {group} are invited."
    if fmt is EngagementFormat.combined:
        return (
            f"A leadership offsite is for {_OFFSITE_ROW[Aspect.participants]}, but the strategy session it "
            f"hosts brings in {_STRATEGY_ROW[Aspect.participants]}, and {everyone}"
        )
    if fmt is EngagementFormat.strategy_session:
        return f"A strategy session brings in {_STRATEGY_ROW[Aspect.participants]}, and {everyone}"
    if not _has_leaders(scoping):
        return (
            f"A leadership offsite is for {_OFFSITE_ROW[Aspect.participants]}, but none of {group} is one, "
            "so all of them are invited."
        )
    return (
        f"A leadership offsite is for {_OFFSITE_ROW[Aspect.participants]}: of {group}, the {len(invited)} "
        "executives, senior leaders and facilitators are invited."
    )


def _focus_reason(fmt: EngagementFormat, scoping: Scoping, modules: list[Module]) -> str:
    kinds = _kinds(o.kind for o in scoping.objectives)
    return (
        f"With objectives on {kinds}, the focus is {_row(fmt, Aspect.focus)}: the agenda runs "
        f"{_modules(modules)}, so every decision leaves with an owner, a timeline and a success metric."
    )


def _location_reason(fmt: EngagementFormat, scoping: Scoping, venue: Venue) -> str:
    constraint = f"constraints.location is {scoping.constraints.location.value}"
    if fmt in _NEEDS_OFFSITE_VENUE:
        return (
            f"{constraint}, and a {_LABELS[fmt]} belongs in {_OFFSITE_ROW[Aspect.location]}, "
            "away from daily operational distractions."
        )
    if venue is Venue.offsite:
        room = _row(fmt, Aspect.location)
        return f"{constraint}, so the strategy session takes an offsite meeting room ({room})."
    return (
        f"{constraint}, and a strategy session works in {_row(fmt, Aspect.location)}: "
        "an onsite room is the simpler choice."
    )


def _purpose_reason(fmt: EngagementFormat, scoping: Scoping, why: str) -> str:
    return f"A {_LABELS[fmt]} for {scoping.client} because {why}: its purpose is {_row(fmt, Aspect.purpose)}."


def _outcome_reason(fmt: EngagementFormat, scoping: Scoping) -> str:
    return (
        f"The outcome {scoping.client} can expect is {_row(fmt, Aspect.outcome)}, with actionable "
        "initiatives, owners, timelines and success metrics that the follow-through then chases."
    )


# ------------------------------------------------------------------------------------------ recommendation


def _build(fmt: EngagementFormat, scoping: Scoping, why: str) -> Recommendation:
    span = _day_range(fmt, scoping.constraints)
    venue = _venue(fmt, scoping.constraints)
    invited = participants_for(fmt, scoping)
    modules = agenda_modules(fmt, scoping.objectives, scoping.topics)
    reasons = {
        Aspect.purpose: _purpose_reason(fmt, scoping, why),
        Aspect.duration: _duration_reason(fmt, scoping, span),
        Aspect.participants: _participants_reason(fmt, scoping, invited),
        Aspect.focus: _focus_reason(fmt, scoping, modules),
        Aspect.location: _location_reason(fmt, scoping, venue),
        Aspect.outcome: _outcome_reason(fmt, scoping),
    }
    min_days, max_days, days = span
    return Recommendation(
        format=fmt,
        min_days=min_days,
        max_days=max_days,
        days=days,
        location=venue,
        participants=invited,
        agenda=build_agenda(fmt, days, scoping.objectives, scoping.topics, group_size=len(invited),
                            day_starts=scoping.constraints.day_starts, day_ends=scoping.constraints.day_ends),
        rationale=[RationaleEntry(aspect=a, reason=reasons[a]) for a in Aspect],
    )


def recommend(scoping: Scoping) -> Recommendation:
    """The recommended format for a scoping, with its duration, venue, participants, agenda and rationale."""
    fmt, why = _decide(scoping)
    return _build(fmt, scoping, why)


def recommend_as(scoping: Scoping, fmt: EngagementFormat) -> Recommendation:
    """The recommendation for a format the consultant chose (an override); ValueError if it cannot be held."""
    error = format_fit_error(fmt, scoping.constraints)
    if error is not None:
        raise ValueError(error)
    picked, why = _decide(scoping)
    if picked is not fmt:
        why = f"the consultant chose it (the rules pick a {_LABELS[picked]} since {why})"
    return _build(fmt, scoping, why)
