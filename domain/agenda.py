"""An agenda a facilitator can run: clock times, timeboxes of 30-90 minutes, breaks, lunch, techniques and steps.

Clear agendas and structured collaboration techniques (turn-taking, dot voting, design thinking) are what make
strategy sessions productive (seed: Mural's tips); the follow-through starts in the last module, where actions
get owners, timelines and success metrics.

How a day is laid out (every rule below is a property test in tests/test_domain_agenda.py):
- it runs from `day_starts` to `day_ends` (the last day a share of that when the session is e.g. 1.5 days);
- day 1 opens with the opening (purpose, expectations, ground rules), later days with a recap;
- lunch (60 minutes, inside 11:30-13:30) on a day that spans that window, a 15-minute break in any stretch of
  work longer than 150 minutes (mid-morning, mid-afternoon), and a close with next steps at the end;
- what is left is cut into working blocks of 30 to 90 minutes; modules take whole blocks, in `RUNNING_ORDER`,
  in proportion to their weight, and stay within one day unless that costs more than it is worth;
- offsite evenings (not the last) end with an optional dinner outside the working hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, time, timedelta

from schemas.recommendation import (
    Agenda,
    AgendaItem,
    BlockKind,
    EngagementFormat,
    Module,
    Step,
    Technique,
)
from schemas.scoping import Objective, ObjectiveKind, Topic

# A full day's facilitated time (9-to-5 less opening, close, breaks and lunch) is about this: 7 hours.
MINUTES_PER_DAY = 420
MIN_BLOCK = 30
MAX_BLOCK = 90
LUNCH = 60
BREAK = 15
LUNCH_EARLIEST = 11 * 60 + 30
LUNCH_LATEST_END = 13 * 60 + 30
# Lunch at 12:30 leaves 09:30-12:30 and 13:30-16:45 on a 9-to-5 day: two blocks either side of each break.
_LUNCH_PREFERRED = 12 * 60 + 30
# A stretch of work longer than this gets a break in its middle (people focus for about 75-90 minutes).
_STRETCH = 150
_STEP = 5
# Splitting a module over two days costs as much as missing its share by this many minutes.
_SPLIT_COST = 90**2
_DEFAULT_START = time(9, 0)
_DEFAULT_END = time(17, 0)
# Turn-taking: every voice heard, 2-3 minutes a person; beyond this group size a round takes too long.
_ROUND_MAX_GROUP = 12
_SMALL_GROUP = 5

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
    name: str
    purpose: str
    technique: Technique
    weight: int  # the module's share of a session's working time
    aims: tuple[str, ...]  # one per block; the last concludes, so a module in n blocks takes the first n-1 and it
    cap: int | None = None  # minutes: framing modules stop growing here, so long sessions go to content


# Techniques follow the seed: dot voting to rank, design thinking to explore and reframe, turn-taking where
# every leader's voice must be heard (vision, trust, commitments).
_SPECS: dict[Module, _Spec] = {
    Module.vision_alignment: _Spec(
        "Vision alignment", "where the leadership team wants the company to be", Technique.turn_taking, 90,
        ("where we are", "where we want to be", "what it takes to get there", "what we stop doing",
         "the vision in one page"),
    ),
    Module.team_building: _Spec(
        "Team building", "trust, open communication and how we decide together", Technique.turn_taking, 90,
        ("what each of us brings", "trust: what builds it, what breaks it", "how we disagree",
         "how we decide together", "our team charter"),
    ),
    Module.competitive_analysis: _Spec(
        "Competitive analysis", "market trends, competitors' strengths and weaknesses", Technique.dot_voting, 60,
        ("market trends", "competitors' strengths and weaknesses", "the threats and openings that matter most"),
    ),
    Module.market_positioning: _Spec(
        "Market positioning", "customer insights, growth opportunities, differentiation",
        Technique.design_thinking, 60,
        ("customer insights", "growth opportunities", "how we differentiate"),
    ),
    Module.strategic_priorities: _Spec(
        "Strategic priorities", "goals to set and the few priorities that matter most", Technique.dot_voting, 90,
        ("the goals on the table", "criteria for what matters", "ranking the candidates", "the few priorities"),
    ),
    Module.problem_solving: _Spec(
        "Problem solving", "reframe the hardest problems and prototype answers", Technique.design_thinking, 90,
        ("reframe the problem", "ideas and prototypes", "test and choose"),
    ),
    Module.action_planning: _Spec(
        "Action planning", "owners, timelines and success metrics", Technique.turn_taking, 60,
        ("initiatives and owners", "timelines, metrics and the first check-in"), cap=120,
    ),
}
OPENING_TITLE = "Opening: purpose, expectations and ground rules"

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


# ---------------------------------------------------------------------------------------------- small maths


def _split(total: int, weights: list[float]) -> list[int]:
    """`total` whole units over `weights`, at least one each, summing exactly to `total` (largest remainder,
    ties to the earlier one, so the split is deterministic)."""
    spare = total - len(weights)
    weight_sum = sum(weights) or 1
    shares = [spare * w / weight_sum for w in weights]
    units = [1 + math.floor(s) for s in shares]
    order = sorted(range(len(weights)), key=lambda i: (-(shares[i] - math.floor(shares[i])), i))
    for i in order[: total - sum(units)]:
        units[i] += 1
    return units


def _even(total: int, parts: int) -> list[int]:
    """`total` minutes in `parts` pieces as equal as 5-minute steps allow (longer pieces first)."""
    units, rest = divmod(total, _STEP)
    base, extra = divmod(units, parts)
    pieces = [(base + (1 if i < extra else 0)) * _STEP for i in range(parts)]
    pieces[-1] += rest  # only a day that does not end on a 5-minute step leaves a rest
    return pieces


def clock(minutes: int) -> str:
    """Minutes after midnight as HH:MM; a day that runs past midnight wraps."""
    hours, mins = divmod(minutes % (24 * 60), 60)
    return f"{hours:02d}:{mins:02d}"


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute


# ---------------------------------------------------------------------------------------------- the days


@dataclass(frozen=True)
class _Fixed:
    kind: BlockKind
    starts: int
    minutes: int


@dataclass(frozen=True)
class _Day:
    number: int
    starts: int
    ends: int
    fixed: tuple[_Fixed, ...]  # opening or recap, breaks, lunch, close: in time order
    stretches: tuple[tuple[int, int], ...]  # (start, minutes) of the working time between them


def day_spans(days: float, starts: int, ends: int) -> list[tuple[int, int]]:
    """(start, end) of each day in minutes after midnight: full days, then the last day's share."""
    count = max(1, math.ceil(round(days, 6)))
    length = ends - starts
    spans = []
    for d in range(count):
        share = min(1.0, days - d)
        # The last day keeps at least an hour: an opening, a close and a short block.
        spans.append((starts, starts + max(60, math.floor(share * length / _STEP + 1e-9) * _STEP)))
    return spans


def _head_and_close(length: int, first_day: bool) -> tuple[int, int]:
    # A short session opens and closes briefly; a day of 4 hours or more takes its 30 (a recap 15) and 15 minutes.
    if length >= 240:
        return (30 if first_day else 15), 15
    if length >= 120:
        return 15, 15
    return 10, 10


def _lunch_start(starts: int, ends: int, work_from: int, work_to: int) -> int | None:
    """Where lunch starts on a day that spans 11:30-13:30: inside that window, leaving no stretch of work shorter
    than a block on either side."""
    if starts > LUNCH_EARLIEST or ends < LUNCH_LATEST_END:
        return None
    candidates = range(work_from, LUNCH_LATEST_END - LUNCH + 1, _STEP)
    fits = [c for c in candidates if c >= LUNCH_EARLIEST and _usable(c - work_from) and _usable(work_to - c - LUNCH)]
    return min(fits, key=lambda c: abs(c - _LUNCH_PREFERRED)) if fits else None


def _usable(stretch: int) -> bool:
    return stretch == 0 or stretch >= MIN_BLOCK


def _with_breaks(start: int, length: int) -> tuple[list[_Fixed], list[tuple[int, int]]]:
    """A stretch of work cut by 15-minute breaks into pieces of at most `_STRETCH` minutes."""
    if length <= _STRETCH:
        return [], [(start, length)] if length else []
    pieces = math.ceil((length + BREAK) / (_STRETCH + BREAK))
    work = _even(length - BREAK * (pieces - 1), pieces)
    breaks, stretches, at = [], [], start
    for i, minutes in enumerate(work):
        stretches.append((at, minutes))
        at += minutes
        if i < pieces - 1:
            breaks.append(_Fixed(BlockKind.break_, at, BREAK))
            at += BREAK
    return breaks, stretches


def _lay_out_day(number: int, starts: int, ends: int) -> _Day:
    head, close = _head_and_close(ends - starts, number == 1)
    work_from, work_to = starts + head, ends - close
    fixed = [_Fixed(BlockKind.opening, starts, head), _Fixed(BlockKind.close, work_to, close)]
    lunch = _lunch_start(starts, ends, work_from, work_to)
    parts = [(work_from, work_to - work_from)]
    if lunch is not None:
        fixed.append(_Fixed(BlockKind.lunch, lunch, LUNCH))
        parts = [(work_from, lunch - work_from), (lunch + LUNCH, work_to - lunch - LUNCH)]
    stretches: list[tuple[int, int]] = []
    for at, length in parts:
        breaks, pieces = _with_breaks(at, length)
        fixed += breaks
        stretches += pieces
    return _Day(number, starts, ends, tuple(sorted(fixed, key=lambda f: f.starts)), tuple(stretches))


# ---------------------------------------------------------------------------------------------- modules into blocks


@dataclass(frozen=True)
class _Slot:
    day: int
    starts: int
    minutes: int


def _slots(days: list[_Day], wanted: int) -> list[_Slot]:
    """Working blocks: each stretch in the fewest blocks of at most 90 minutes, then more (never under 30) while
    there are fewer blocks than modules."""
    counts = {(d.number, i): math.ceil(length / MAX_BLOCK) for d in days for i, (_, length) in enumerate(d.stretches)}
    lengths = {(d.number, i): length for d in days for i, (_, length) in enumerate(d.stretches)}
    while sum(counts.values()) < wanted:
        growable = [k for k in counts if lengths[k] // (counts[k] + 1) >= MIN_BLOCK]
        if not growable:
            break
        longest = max(growable, key=lambda k: (lengths[k] / counts[k], -k[0], -k[1]))
        counts[longest] += 1
    slots = []
    for d in days:
        for i, (at, length) in enumerate(d.stretches):
            for minutes in _even(length, counts[(d.number, i)]):
                slots.append(_Slot(d.number, at, minutes))
                at += minutes
    return slots


def _targets(modules: list[Module], total: int) -> list[float]:
    """Each module's ideal minutes: in proportion to weight, capped modules no more than their cap."""
    specs = [_SPECS[m] for m in modules]
    targets = [0.0] * len(modules)
    free = list(range(len(modules)))
    budget = float(total)
    while free:
        weight = sum(specs[i].weight for i in free)
        capped = [i for i in free if budget * specs[i].weight / weight > (specs[i].cap or math.inf)]
        if not capped or len(capped) == len(free):
            for i in free:
                targets[i] = budget * specs[i].weight / weight
            break
        for i in capped:
            targets[i] = float(specs[i].cap or 0)
            budget -= targets[i]
        free = [i for i in free if i not in capped]
    return targets


def _merge(modules: list[Module], room: int) -> list[list[Module]]:
    """Modules grouped so that there are no more groups than `room` blocks: the lightest neighbours share one."""
    groups = [[m] for m in modules]
    while len(groups) > max(1, room):
        weights = [sum(_SPECS[m].weight for m in a + b) for a, b in zip(groups, groups[1:], strict=False)]
        i = weights.index(min(weights))
        groups[i : i + 2] = [groups[i] + groups[i + 1]]
    return groups


def _assign(groups: list[list[Module]], slots: list[_Slot]) -> list[int]:
    """How many consecutive blocks each group takes: closest to its share, splitting a module over two days
    only when that saves more than `_SPLIT_COST` (dynamic programming over the cut points)."""
    total = sum(s.minutes for s in slots)
    targets = [sum(t) for t in _group_targets(groups, total)]
    prefix = [0]
    for s in slots:
        prefix.append(prefix[-1] + s.minutes)
    n, g = len(slots), len(groups)
    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(g + 1)]
    cut = [[0] * (n + 1) for _ in range(g + 1)]
    best[0][0] = 0.0
    for j in range(1, g + 1):
        for end in range(j, n - (g - j) + 1):
            for start in range(j - 1, end):
                if best[j - 1][start] == inf:
                    continue
                minutes = prefix[end] - prefix[start]
                split = slots[end - 1].day - slots[start].day
                cost = best[j - 1][start] + (minutes - targets[j - 1]) ** 2 + _SPLIT_COST * split
                if cost < best[j][end]:
                    best[j][end], cut[j][end] = cost, start
    sizes, end = [], n
    for j in range(g, 0, -1):
        start = cut[j][end]
        sizes.append(end - start)
        end = start
    return sizes[::-1]


def _group_targets(groups: list[list[Module]], total: int) -> list[list[float]]:
    flat = _targets([m for group in groups for m in group], total)
    out, i = [], 0
    for group in groups:
        out.append(flat[i : i + len(group)])
        i += len(group)
    return out


# ---------------------------------------------------------------------------------------------- techniques


def planned_options(group_size: int) -> int:
    """How many options a dot vote of this group usually ends with, once the silent ideas are clustered."""
    return max(5, min(12, group_size // 2 + 3))


def dots_per_person(options: int) -> int:
    """The facilitators' N/3 rule: a third of the options, so that the dots separate the few from the many."""
    return max(1, math.ceil(options / 3))


def technique_for(module: Module, minutes: int, group_size: int) -> Technique:
    """The module's technique, unless a full round of 2 minutes a person does not fit: then small groups."""
    base = _SPECS[module].technique
    if base is Technique.turn_taking and (group_size > _ROUND_MAX_GROUP or 2 * group_size + 10 > minutes):
        return Technique.small_groups
    return base


def _named(total: int, parts: list[tuple[str, float]]) -> list[Step]:
    return [Step(name=name, minutes=m) for (name, _), m in zip(parts, _split(total, [w for _, w in parts]),
                                                                strict=True)]


def _groups(group_size: int) -> tuple[str, int]:
    if group_size <= 8:
        return "pairs", math.ceil(group_size / 2)
    return f"groups of about {_SMALL_GROUP}", math.ceil(group_size / _SMALL_GROUP)


def technique_steps(technique: Technique, minutes: int, group_size: int, aim: str) -> tuple[list[Step], list[str]]:
    """The steps of a block and their minutes (summing to `minutes`), and the materials it needs."""
    if technique is Technique.turn_taking:
        each = 3 if 3 * group_size + 10 <= minutes else 2
        rounds = each * group_size
        rest = minutes - rounds
        frame, capture = (5, 5) if rest >= 15 else (max(1, rest // 3), max(1, rest // 3))
        steps = [Step(name=f"Frame the question: {aim}", minutes=frame),
                 Step(name=f"Round: {each} min a person, {group_size} people, no interruptions", minutes=rounds)]
        discuss = minutes - rounds - frame - capture
        if discuss > 0:
            steps.append(Step(name="Open discussion of what the round surfaced", minutes=discuss))
        else:
            steps[1] = Step(name=steps[1].name, minutes=rounds + discuss)
        steps.append(Step(name="Capture agreements and open questions", minutes=capture))
        return steps, [f"timer ({each} min a speaker)", "a talking object", "flip chart for agreements"]
    if technique is Technique.small_groups:
        kind, count = _groups(group_size)
        return _named(minutes, [(f"Frame the question: {aim}", 1), ("Think alone, one sticky note an idea", 1),
                                (f"Discuss in {count} {kind}", 4), ("Report back: one headline from each", 2),
                                ("Plenary: agree what we keep", 2)]), [
            "timer", "sticky notes and markers", f"a flip chart for each of the {count} {kind.split(' ')[0]}"]
    if technique is Technique.dot_voting:
        options = planned_options(group_size)
        dots = dots_per_person(options)
        ideas = "Silent ideas, one a sticky note" if group_size <= _ROUND_MAX_GROUP else (
            f"Silent ideas, then {_groups(group_size)[0]} pick their best")
        return _named(minutes, [(f"Frame the question: {aim}", 1), (ideas, 2),
                                (f"Cluster and name the options (about {options})", 2),
                                (f"Dot vote: {dots} dots a person", 1), ("Discuss the top three", 3),
                                ("Record the decision", 1)]), [
            f"{dots} dots a person ({dots * group_size} in all)", "sticky notes and markers", "timer"]
    kind, count = _groups(group_size)
    teams = "" if group_size <= 6 else f" in {kind}"
    return _named(minutes, [(f"Empathize: {aim}", 2), (f"Define the question{teams}", 1),
                            (f"Ideate{teams}", 2), ("Prototype the best idea", 2), ("Test and share back", 2)]), [
        "sticky notes and markers", "paper and tape for prototypes", "timer"]


def _opening_steps(first_day: bool, minutes: int, group_size: int) -> list[Step]:
    if first_day:
        return _named(minutes, [("Welcome and purpose of the session", 1), ("Expectations: one line each", 2),
                                ("Ground rules and the agenda", 1)])
    return _named(minutes, [("Recap of yesterday: decisions and open questions", 2), ("Today's aims", 1)])


def _close_steps(last_day: bool, minutes: int) -> list[Step]:
    if last_day:
        return _named(minutes, [("Next steps: owners and the first check-in date", 2), ("One word each to close", 1)])
    return _named(minutes, [("What we decided today", 1), ("Next steps and tomorrow's start", 1)])


# ---------------------------------------------------------------------------------------------- the agenda


def _aims(module: Module, parts: int) -> list[str]:
    aims = _SPECS[module].aims
    if parts == 1:
        return [_SPECS[module].purpose]
    middle = list(aims[:-1])
    chosen = [middle[i % len(middle)] + (f" (round {i // len(middle) + 1})" if i >= len(middle) else "")
              for i in range(parts - 1)]
    return [*chosen, aims[-1]]


def _work_items(groups: list[list[Module]], sizes: list[int], slots: list[_Slot],
                group_size: int) -> list[AgendaItem]:
    items, at = [], 0
    for group, size in zip(groups, sizes, strict=True):
        module = group[0]
        spec = _SPECS[module]
        aims = _aims(module, size)
        for part, slot in enumerate(slots[at : at + size]):
            technique = technique_for(module, slot.minutes, group_size)
            steps, materials = technique_steps(technique, slot.minutes, group_size, aims[part])
            if len(group) > 1:
                title = " + ".join(_SPECS[m].name for m in group)
            elif size > 1:
                title = f"{spec.name} {part + 1}/{size}: {aims[part]}"
            else:
                title = f"{spec.name}: {spec.purpose}"
            voting = technique is Technique.dot_voting
            options = planned_options(group_size) if voting else None
            items.append(AgendaItem(
                day=slot.day, kind=BlockKind.work, starts=clock(slot.starts), ends=clock(slot.starts + slot.minutes),
                module=module, also=group[1:], title=title, aim=aims[part], technique=technique,
                minutes=slot.minutes, steps=steps, materials=materials,
                dots=dots_per_person(options) if options else None, options=options))
        at += size
    return items


def _fixed_item(day: _Day, f: _Fixed, last_day: int, group_size: int) -> AgendaItem:
    ends = clock(f.starts + f.minutes)
    if f.kind is BlockKind.opening:
        first = day.number == 1
        return AgendaItem(day=day.number, kind=f.kind, module=Module.opening if first else None,
                          title=OPENING_TITLE if first else "Opening recap", starts=clock(f.starts), ends=ends,
                          minutes=f.minutes, steps=_opening_steps(first, f.minutes, group_size),
                          materials=["the agenda on the wall", "name cards"] if first else ["yesterday's flip charts"])
    if f.kind is BlockKind.close:
        last = day.number == last_day
        title = "Close: next steps and the follow-through" if last else "Close: what we decided, next steps"
        return AgendaItem(day=day.number, kind=f.kind, title=title, starts=clock(f.starts), ends=ends,
                          minutes=f.minutes, steps=_close_steps(last, f.minutes))
    title = "Lunch" if f.kind is BlockKind.lunch else "Break"
    return AgendaItem(day=day.number, kind=f.kind, title=title, starts=clock(f.starts), ends=ends, minutes=f.minutes,
                      steps=[Step(name=title, minutes=f.minutes)])


def _social(day: _Day) -> AgendaItem:
    starts = max(day.ends + 90, 19 * 60)
    minutes = 150
    return AgendaItem(day=day.number, kind=BlockKind.social, title="Dinner together (optional)",
                      aim="the informal time team building relies on", starts=clock(starts),
                      ends=clock(starts + minutes), minutes=minutes, optional=True,
                      steps=[Step(name="Dinner, no agenda", minutes=minutes)])


def build_agenda(
    fmt: EngagementFormat,
    days: float,
    objectives: list[Objective],
    topics: list[Topic],
    *,
    group_size: int = 8,
    day_starts: time = _DEFAULT_START,
    day_ends: time = _DEFAULT_END,
) -> Agenda:
    """The agenda of a session of `days` days (0.125 = an hour or two, up to 14) for `group_size` people, its
    days running from `day_starts` to `day_ends` local time. ValueError when the hours hold no working block."""
    return agenda_of_modules(fmt, days, agenda_modules(fmt, objectives, topics), group_size=group_size,
                             day_starts=day_starts, day_ends=day_ends)


def agenda_of_modules(
    fmt: EngagementFormat,
    days: float,
    wanted: list[Module],
    *,
    group_size: int = 8,
    day_starts: time = _DEFAULT_START,
    day_ends: time = _DEFAULT_END,
) -> Agenda:
    """`build_agenda` for a known list of modules (e.g. an engagement's agenda laid out for other days)."""
    if not days > 0:
        raise ValueError(f"a session needs a positive number of days, got {days}")
    if group_size < 1:
        raise ValueError(f"a session needs at least one participant, got {group_size}")
    start, end = _minutes(day_starts), _minutes(day_ends)
    if end <= start:
        end += 24 * 60  # a day that runs past midnight
    spans = day_spans(days, start, end)
    laid = [_lay_out_day(i + 1, s, e) for i, (s, e) in enumerate(spans)]
    modules: list[Module] = [m for m in RUNNING_ORDER if m in wanted and m is not Module.opening]
    slots = _slots(laid, len(modules))
    if not slots:
        raise ValueError(f"{days:g} day(s) of {clock(start)}-{clock(end)} leave no time for a working block")
    groups = _merge(modules, len(slots))
    sizes = _assign(groups, slots)
    work = _work_items(groups, sizes, slots, group_size)
    items: list[AgendaItem] = []
    for day in laid:
        fixed = [_fixed_item(day, f, len(laid), group_size) for f in day.fixed]
        blocks = sorted([*fixed, *(w for w in work if w.day == day.number)], key=lambda i: _offset(i, day))
        if fmt in _RELATIONSHIP_FORMATS and day.number < len(laid):
            blocks.append(_social(day))
        items += [b.model_copy(update={"ref": f"{day.number}.{n}"}) for n, b in enumerate(blocks, start=1)]
    return Agenda(days=days, items=items, day_starts=clock(start), day_ends=clock(end), group_size=group_size)


def _offset(item: AgendaItem, day: _Day) -> int:
    """Minutes from the day's start: clock strings wrap at midnight, the offset does not."""
    assert item.starts is not None
    hours, minutes = (int(p) for p in item.starts.split(":"))
    return (hours * 60 + minutes - day.starts) % (24 * 60)


def held_agenda(fmt: EngagementFormat, days: float, objectives: list[Objective], topics: list[Topic], *,
                group_size: int, starts: time, hours: timedelta) -> Agenda | None:
    """The agenda of a scheduled session: its days begin at the scheduled start and last the scoping's hours.
    None when those hours hold no agenda (the workflow then keeps the recommendation's), never an exception:
    workflow code that raised would fail its task."""
    end = _minutes(starts) + int(hours.total_seconds() // 60)
    ends = time((end // 60) % 24, end % 60)
    try:
        return build_agenda(fmt, days, objectives, topics, group_size=max(1, group_size), day_starts=starts,
                            day_ends=ends)
    except ValueError:
        return None


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_label(number: int, on: date | None) -> str:
    """"Day 2" or "Day 2, Fri 12 Feb 2027"."""
    if on is None:
        return f"Day {number}"
    return f"Day {number}, {_WEEKDAYS[on.weekday()]} {on.day} {_MONTHS[on.month - 1]} {on.year}"


def modules_of(agenda: Agenda) -> list[Module]:
    """The modules an agenda runs, in running order (merged ones too)."""
    present = {m for i in agenda.items for m in [i.module, *i.also] if m is not None}
    return [m for m in RUNNING_ORDER if m in present]


def agenda_lines(agenda: Agenda, first_day: date | None = None) -> list[str]:
    """The plan day by day with clock times, as an invitation shows it: a heading line a day, then its blocks."""
    lines: list[str] = []
    for number in sorted({i.day for i in agenda.items}):
        lines.append(day_label(number, first_day + timedelta(days=number - 1) if first_day else None))
        for item in (i for i in agenda.items if i.day == number):
            when = f"{item.starts}-{item.ends}" if item.starts else f"{item.minutes} min"
            technique = f" ({item.technique.value.replace('_', ' ')})" if item.technique else ""
            lines.append(f"{when} {item.title}{technique}")
    return lines


def unknown_blocks(agenda: Agenda | None, refs: list[str | None]) -> list[str]:
    """The block numbers an outcomes file names that the agenda as held does not have."""
    known = {i.ref for i in agenda.items} if agenda else set()
    return sorted({r for r in refs if r is not None and r not in known})


def vote_warnings(agenda: Agenda | None, votes: list[tuple[str, int, str | None]], participants: int) -> list[str]:
    """What is off with the recorded dot votes, one sentence each. `votes` are (option, votes, block).

    Each block's options form one vote. The dots a person were computed for about three times as many options
    (the N/3 rule): a vote with more options than that spreads the dots too thin to separate the few from the many;
    a vote with more dots cast than the room held was miscounted."""
    planned = [i for i in agenda.items if i.dots] if agenda else []
    warnings = []
    for ref in dict.fromkeys(block for _, _, block in votes):
        options = [(option, n) for option, n, block in votes if block == ref]
        item = agenda.block(ref) if agenda and ref else None
        dots = (item.dots if item and item.dots else planned[0].dots if planned and planned[0].dots
                else dots_per_person(planned_options(participants)))
        where = f"in block {ref}" + (f" ({item.title})" if item else "") if ref else "without a block"
        if len(options) > 3 * dots:
            warnings.append(f"the dot vote {where} has {len(options)} options, more than the {dots} dots a person "
                            f"can rank (at most {3 * dots} options); cluster them, or give "
                            f"{dots_per_person(len(options))} dots a person")
        cast = sum(n for _, n in options)
        if cast > dots * participants:
            warnings.append(f"the dot vote {where} counts {cast} votes, more than the {dots * participants} dots "
                            f"{participants} people with {dots} each could cast")
    return warnings
