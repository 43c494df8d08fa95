"""The typed search attributes of an engagement, as the Temporal UI and `temporal workflow list` see them.

Every server the code meets must have them registered (dev server flag, operator service, admin tools),
or a workflow task that sets one fails.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

ENGAGEMENT_PHASE = SearchAttributeKey.for_keyword("EngagementPhase")
ENGAGEMENT_FORMAT = SearchAttributeKey.for_keyword("EngagementFormat")
CLIENT_NAME = SearchAttributeKey.for_keyword("ClientName")
CONSULTANT = SearchAttributeKey.for_keyword("Consultant")
NEXT_CHECKIN_AT = SearchAttributeKey.for_datetime("NextCheckInAt")
ACTIONS_AT_RISK = SearchAttributeKey.for_int("ActionsAtRisk")
# Participants who declined the current invitation (their RSVP, read by the inbound paths).
ATTENDEES_DECLINED = SearchAttributeKey.for_int("AttendeesDeclined")

ALL_KEYS = (ENGAGEMENT_PHASE, ENGAGEMENT_FORMAT, CLIENT_NAME, CONSULTANT, NEXT_CHECKIN_AT, ACTIONS_AT_RISK,
            ATTENDEES_DECLINED)


def upsert_changed(current: dict[str, object], wanted: dict[str, object]) -> None:
    """Upsert the attributes in `wanted` (name -> value, None to unset) whose value differs from `current`, the
    workflow's own record of what it set; an unchanged attribute would only add history. Call from workflow code."""
    from temporalio import workflow

    keys = {k.name: k for k in ALL_KEYS}
    updates: list[SearchAttributeUpdate] = []
    for name, value in wanted.items():
        if current.get(name, ...) == value:
            continue
        current[name] = value
        key = keys[name]
        updates.append(key.value_unset() if value is None else key.value_set(value))  # type: ignore[arg-type]
    if updates:
        workflow.upsert_search_attributes(updates)


# The names the `temporal` CLI and admin tools use for each type.
_CLI_TYPE = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "INT": "Int"}


def cli_flags() -> list[str]:
    """`--search-attribute NAME=Type` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL_KEYS:
        type_name = key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPE[type_name]}"]
    return flags
