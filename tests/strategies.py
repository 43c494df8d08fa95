"""Hypothesis strategies for the project's inputs, shared by the property tests.

`scopings()` builds valid `Scoping` instances; its keyword arguments narrow a part of the document (objective
kinds, max_days, location, roles) so a property about one rule needs no `assume()` filtering.

`examples(n)`: how many examples a property runs. All `n` in `make test`; a quarter in `make check`
(`ENGAGE_TEST_TIER=fast`, set by the Makefile), which is for learning in seconds that a change is wrong.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

from hypothesis import strategies as st

from schemas.scoping import (
    Constraints,
    Consultant,
    Location,
    Objective,
    ObjectiveKind,
    Participant,
    Person,
    Role,
    Scoping,
    Topic,
)


def examples(n: int) -> int:
    return max(10, n // 4) if os.environ.get("ENGAGE_TEST_TIER") == "fast" else n


# A few zones with daylight saving on both hemispheres, none, and a half-hour offset.
TIMEZONES = (
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Australia/Sydney",
    "UTC",
)

# The edges of the rules (0.125, just under 1 and 2, 1, 2, 3) come up often; the rest of 0.125..14 too.
MAX_DAYS_EDGES = (0.125, 0.25, 0.5, 0.99, 1.0, 1.5, 1.99, 2.0, 2.5, 3.0, 3.5, 14.0)

_WORDS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Soylent",
    "Hooli",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
)
_SUFFIXES = ("Corp", "GmbH", "Ltda", "Inc", "Group", "& Sons")


def max_days() -> st.SearchStrategy[float]:
    """Valid `constraints.max_days` values: 0.125 (a few hours) to 14 days, edges favoured."""
    return st.one_of(
        st.sampled_from(MAX_DAYS_EDGES),
        st.floats(min_value=0.125, max_value=14, allow_nan=False, allow_infinity=False),
    )


def client_names() -> st.SearchStrategy[str]:
    return st.builds(lambda w, s: f"{w} {s}", st.sampled_from(_WORDS), st.sampled_from(_SUFFIXES))


def objectives(kinds: st.SearchStrategy[ObjectiveKind] | None = None) -> st.SearchStrategy[list[Objective]]:
    """1-8 objectives whose kinds are drawn from `kinds` (all kinds by default)."""
    kind = kinds if kinds is not None else st.sampled_from(list(ObjectiveKind))
    one = st.builds(lambda k, n: Objective(text=f"Objective {n} about {k.value}", kind=k), kind, st.integers(1, 99))
    return st.lists(one, min_size=1, max_size=8)


def participants(roles: st.SearchStrategy[Role] | None = None) -> st.SearchStrategy[list[Participant]]:
    """1-8 participants with distinct emails (the scoping rejects duplicates) and roles drawn from `roles`."""
    role = roles if roles is not None else st.sampled_from(list(Role))
    zone = st.none() | st.sampled_from(TIMEZONES)  # None: the participant lives in the client's zone

    def build(people: list[tuple[Role, str | None]]) -> list[Participant]:
        return [
            Participant(name=f"Person {i}", email=f"p{i}@client.example", role=r, timezone=z)
            for i, (r, z) in enumerate(people)
        ]

    return st.lists(st.tuples(role, zone), min_size=1, max_size=8).map(build)


def constraints(
    days: st.SearchStrategy[float] | None = None,
    location: st.SearchStrategy[Location] | None = None,
) -> st.SearchStrategy[Constraints]:
    def build(start: date, window: int, max_days: float, loc: Location) -> Constraints:
        return Constraints(earliest=start, latest=start + timedelta(days=window), max_days=max_days, location=loc)

    return st.builds(
        build,
        st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
        st.integers(0, 120),
        days if days is not None else max_days(),
        location if location is not None else st.sampled_from(list(Location)),
    )


@st.composite
def scopings(
    draw: st.DrawFn,
    kinds: st.SearchStrategy[ObjectiveKind] | None = None,
    days: st.SearchStrategy[float] | None = None,
    location: st.SearchStrategy[Location] | None = None,
    roles: st.SearchStrategy[Role] | None = None,
    objective_lists: st.SearchStrategy[list[Objective]] | None = None,
) -> Scoping:
    """A valid scoping; each argument narrows one part (objective kinds or whole objective lists, max_days,
    location, participant roles)."""
    zone = draw(st.sampled_from(TIMEZONES))
    return Scoping(
        id=draw(st.none() | st.sampled_from(["acme-2027-q1", "globex-offsite", "x", "a1-b2"])),
        client=draw(client_names()),
        timezone=zone,
        consultant=Consultant(name="Dana Reyes", email="dana@consultancy.example"),
        sponsor=Person(name="Sam Okafor", email="sam@client.example", timezone=draw(st.none() | st.just(zone))),
        objectives=draw(objective_lists if objective_lists is not None else objectives(kinds)),
        participants=draw(participants(roles)),
        constraints=draw(constraints(days, location)),
        topics=draw(st.lists(st.sampled_from(list(Topic)), unique=True, max_size=len(Topic))),
    )
