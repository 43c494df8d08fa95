"""A time-boxed agenda for a session: which modules, in which order, how long, with which technique.

Clear agendas and structured collaboration techniques (turn-taking, dot voting, design thinking) are what make
strategy sessions productive (seed: Mural's tips); the follow-through starts in the last module, where actions
get owners, timelines and success metrics.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from schemas.recommendation import Agenda, AgendaItem, EngagementFormat, Module, Technique
from schemas.scoping import Objective, ObjectiveKind, Topic

# A working day of facilitated time: 7 hours once breaks and lunch are taken out of a 9-to-5 day.
MINUTES_PER_DAY = 420
# Agendas read better in 5-minute steps; sessions too short for that fall back to whole minutes.
_STEP = 5
# A module split over two days keeps at least this much on each side (when the split allows it).
_SNAP = 30

_MARKET_KINDS = frozenset({ObjectiveKind.market, ObjectiveKind.competition})
# The strategy kinds that need priorities ranked; problem_solving has its own module.
_PRIORITY_KINDS = frozenset(
    {
        ObjectiveKind.planning,
        ObjectiveKind.goals,
        ObjectiveKind.performance,
        ObjectiveKind.market,
        ObjectiveKind.competition,
    }
)
_RELATIONSHIP_FORMATS = frozenset({EngagementFormat.offsite, EngagementFormat.combined})
_STRATEGY_FORMATS = frozenset({EngagementFormat.strategy_session, EngagementFormat.combined})


@dataclass(frozen=True)
class _Spec:
    title: str
    technique: Technique
    weight: int  # minutes in a one-day session; the relative size of the module otherwise
    cap: int | None = None  # framing modules stop growing here, so long sessions go to content


# Techniques follow the seed: dot voting to rank, design thinking to explore and reframe, turn-taking where
# every leader's voice must be heard (vision, trust, commitments).
_SPECS: dict[Module, _Spec] = {
    Module.opening: _Spec("Opening: purpose, expectations and ground rules", Technique.turn_taking, 30, 45),
    Module.vision_alignment: _Spec(
        "Vision alignment: where the leadership team wants the company to be", Technique.turn_taking, 90
    ),
    Module.team_building: _Spec(
        "Team building: trust, open communication and how we decide together", Technique.turn_taking, 90
    ),
    Module.competitive_analysis: _Spec(
        "Competitive analysis: market trends, competitors' strengths and weaknesses", Technique.dot_voting, 60
    ),
    Module.market_positioning: _Spec(
        "Market positioning: customer insights, growth opportunities, differentiation",
        Technique.design_thinking,
        60,
    ),
    Module.strategic_priorities: _Spec(
        "Strategic priorities: goals to set and the few priorities that matter most", Technique.dot_voting, 90
    ),
    Module.problem_solving: _Spec(
        "Problem solving: reframe the hardest problems and prototype answers", Technique.design_thinking, 90
    ),
    Module.action_planning: _Spec(
        "Action planning: owners, timelines and success metrics", Technique.turn_taking, 60, 120
    ),
}


# Relationships first (trust makes the hard strategy talk possible), then the market picture that feeds the
# priorities, and action planning always last: it is where the follow-through starts.
RUNNING_ORDER: tuple[Module, ...] = (
    Module.opening,
    Module.vision_alignment,
    Module.team_building,
    Module.competitive_analysis,
    Module.market_positioning,
    Module.strategic_priorities,
    Module.problem_solving,
    Module.action_planning,
)


def agenda_modules(fmt: EngagementFormat, objectives: list[Objective], topics: list[Topic]) -> list[Module]:
    """The modules the session needs, in `RUNNING_ORDER`."""
    kinds = {o.kind for o in objectives}
    asked = set(topics)
    market = bool(kinds & _MARKET_KINDS)
    wanted = {
        Module.opening: True,
        Module.vision_alignment: fmt in _RELATIONSHIP_FORMATS or Topic.vision_alignment in asked,
        Module.team_building: fmt in _RELATIONSHIP_FORMATS or Topic.team_building in asked,
        Module.competitive_analysis: market or Topic.competitive_analysis in asked,
        Module.market_positioning: market or Topic.market_positioning in asked,
        Module.strategic_priorities: bool(kinds & _PRIORITY_KINDS),
        Module.problem_solving: ObjectiveKind.problem_solving in kinds,
        Module.action_planning: True,
    }
    # A strategy session without a strategy module would not be one (e.g. relationship objectives that the
    # constraints forced into an onsite session): it still sets priorities.
    if fmt in _STRATEGY_FORMATS and not (wanted[Module.strategic_priorities] or wanted[Module.problem_solving]):
        wanted[Module.strategic_priorities] = True
    return [m for m in RUNNING_ORDER if wanted[m]]


def _largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Split `total` whole units over `weights`, at least one unit each, summing exactly to `total`.

    Largest remainder keeps the split proportional and deterministic (ties go to the earlier module)."""
    count = len(weights)
    spare = total - count
    weight_sum = sum(weights)
    shares = [spare * w / weight_sum for w in weights]
    units = [1 + math.floor(s) for s in shares]
    left = total - sum(units)
    by_remainder = sorted(range(count), key=lambda i: (-(shares[i] - math.floor(shares[i])), i))
    for i in by_remainder[:left]:
        units[i] += 1
    return units


def _allocate(modules: list[Module], budget: int) -> list[int]:
    """Minutes per module, whole and > 0, summing to at most `budget`.

    Short sessions shrink every module in proportion; long ones give opening and action planning their
    natural length (up to a cap) and spend the rest on the content modules.
    """
    step = _STEP if budget // _STEP >= len(modules) else 1
    units = budget // step
    specs = [_SPECS[m] for m in modules]
    weight_total = sum(s.weight for s in specs)
    content = [i for i, s in enumerate(specs) if s.cap is None]
    if budget <= weight_total or not content:
        return [u * step for u in _largest_remainder(units, [s.weight for s in specs])]
    result = [0] * len(modules)
    scale = budget / weight_total
    for i, spec in enumerate(specs):
        if spec.cap is not None:
            result[i] = (min(spec.cap, math.floor(spec.weight * scale)) // step) * step
    content_units = units - sum(result) // step
    for i, share in zip(content, _largest_remainder(content_units, [specs[i].weight for i in content]), strict=True):
        result[i] = share * step
    return result


def _snap_to_days(minutes: list[int], budget: int) -> list[int]:
    """Move a module boundary that falls just before or after the end of a day onto it.

    Without this a module could start with 5 minutes at the end of one day and continue the next morning;
    moving the boundary by less than `_SNAP` minutes keeps the split proportional enough and the days tidy.
    """
    bounds = list(itertools.accumulate(minutes))
    for i in range(len(bounds) - 1):
        day_end = round(bounds[i] / MINUTES_PER_DAY) * MINUTES_PER_DAY
        previous = bounds[i - 1] if i else 0
        if 0 < day_end < budget and abs(bounds[i] - day_end) < _SNAP and previous < day_end < bounds[i + 1]:
            bounds[i] = day_end
    return [b - a for a, b in zip([0, *bounds[:-1]], bounds, strict=True)]


def _day_capacities(budget: int) -> list[int]:
    full, rest = divmod(budget, MINUTES_PER_DAY)
    return [MINUTES_PER_DAY] * full + ([rest] if rest else [])


def build_agenda(fmt: EngagementFormat, days: float, objectives: list[Objective], topics: list[Topic]) -> Agenda:
    """A time-boxed agenda for a session of `days` days (0.125 = a few hours, up to 14).

    The session holds at most `days * 420` minutes and each day at most 420; a module that does not fit in
    what is left of a day continues the next morning.
    """
    if not days > 0:
        raise ValueError(f"a session needs a positive number of days, got {days}")
    modules = agenda_modules(fmt, objectives, topics)
    # Floor, with no rounding up: even 1.9999999999999982 days must not get 840 minutes. A float product
    # that lands a hair under a whole minute loses that minute, which the 5-minute steps absorb anyway.
    budget = math.floor(days * MINUTES_PER_DAY)
    if budget < len(modules):
        raise ValueError(f"{days} day(s) is too short for {len(modules)} agenda modules")
    minutes = _snap_to_days(_allocate(modules, budget), budget)
    capacities = _day_capacities(budget)
    items: list[AgendaItem] = []
    day, left = 0, capacities[0]
    for module, length in zip(modules, minutes, strict=True):
        spec = _SPECS[module]
        title = spec.title
        while length > 0:
            if left == 0:
                day, left = day + 1, capacities[day + 1]
            part = min(length, left)
            items.append(AgendaItem(day=day + 1, module=module, title=title, technique=spec.technique, minutes=part))
            length -= part
            left -= part
            title = f"{spec.title} (continued)"
    return Agenda(days=days, items=items)
