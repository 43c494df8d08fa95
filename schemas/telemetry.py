"""The engine's own Prometheus counters (next to the SDK's runtime metrics on the worker's metrics port)."""

from __future__ import annotations

MESSAGES_SENT = ("engage_messages_sent", "Emails accepted by the SMTP server, once each")
CHECKINS_RECEIVED = ("engage_checkins_received", "Metric values received for actions (CLI or email)")
ESCALATIONS = ("engage_escalations", "Escalations to a sponsor after missed check-ins")
REPLIES_REJECTED = ("engage_replies_rejected", "Inbound replies rejected (bad token, spoofed sender, ...)")
