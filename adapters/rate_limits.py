"""Limits per client address for the inbound SMTP server: connections at once, messages per minute, refused
recipients. In memory, per server process: a restart forgets them, which costs an abuser nothing it did not have.

The answers are temporary (421/450): a legitimate relay that trips a limit delivers later, an abuser is slowed
to a trickle. Addresses in ENGAGE_INBOUND_EXEMPT_NETWORKS (the trusted relay in front of us, which has its own
limits and through which every sender arrives) are not limited.
"""

from __future__ import annotations

import ipaddress
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from schemas.settings import Settings

Clock = Callable[[], float]


@dataclass(frozen=True)
class Limits:
    connections_per_ip: int
    messages_per_minute: int
    refused_recipients: int
    refused_window_s: float
    block_s: float
    exempt: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        exempt = tuple(ipaddress.ip_network(n.strip(), strict=False)
                       for n in settings.inbound_exempt_networks.split(",") if n.strip())
        return cls(settings.inbound_max_connections_per_ip, settings.inbound_max_messages_per_minute,
                   settings.inbound_max_refused_recipients, settings.inbound_refused_window_s,
                   settings.inbound_block_s, exempt)


class ClientLimits:
    """The counters of every client address; each check answers None (go on) or the SMTP reply that refuses."""

    def __init__(self, limits: Limits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._connections: dict[str, int] = defaultdict(int)
        self._messages: dict[str, deque[float]] = defaultdict(deque)
        self._refused: dict[str, deque[float]] = defaultdict(deque)
        self._blocked_until: dict[str, float] = {}
        self._calls = 0

    def exempt(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.limits.exempt)

    def _recent(self, events: deque[float], window: float) -> deque[float]:
        horizon = self.clock() - window
        while events and events[0] <= horizon:
            events.popleft()
        return events

    def blocked(self, ip: str) -> bool:
        until = self._blocked_until.get(ip)
        if until is None:
            return False
        if self.clock() >= until:
            del self._blocked_until[ip]
            return False
        return True

    def _block_reply(self, ip: str) -> str:
        left = max(1, int(self._blocked_until[ip] - self.clock()))
        return f"421 4.7.1 too many refused recipients from {ip}: try again in {left} s"

    def connect(self, ip: str) -> str | None:
        """A new connection: counted until `disconnect`, unless refused."""
        self._calls += 1
        if self._calls % 1000 == 0:
            self.prune()
        if self.exempt(ip):
            return None
        if self.blocked(ip):
            return self._block_reply(ip)
        if self._connections[ip] >= self.limits.connections_per_ip:
            return f"421 4.7.0 too many connections from {ip} (at most {self.limits.connections_per_ip})"
        self._connections[ip] += 1
        return None

    def prune(self) -> None:
        """Forget addresses with nothing left in their windows: many addresses (IPv6) must not grow memory."""
        for table, window in ((self._messages, 60.0), (self._refused, self.limits.refused_window_s)):
            for ip in [ip for ip, events in table.items() if not self._recent(events, window)]:
                del table[ip]
        for ip in [ip for ip, until in self._blocked_until.items() if self.clock() >= until]:
            del self._blocked_until[ip]

    def disconnect(self, ip: str) -> None:
        if ip in self._connections:
            self._connections[ip] -= 1
            if self._connections[ip] <= 0:
                del self._connections[ip]

    def message(self, ip: str) -> str | None:
        """A MAIL FROM: one more message this minute."""
        if self.exempt(ip):
            return None
        if self.blocked(ip):
            return self._block_reply(ip)
        recent = self._recent(self._messages[ip], 60.0)
        if len(recent) >= self.limits.messages_per_minute:
            return f"450 4.7.1 too many messages from {ip} (at most {self.limits.messages_per_minute} a minute)"
        recent.append(self.clock())
        return None

    def recipient(self, ip: str) -> str | None:
        """Before a RCPT is looked at: refused while the address is blocked."""
        if not self.exempt(ip) and self.blocked(ip):
            return self._block_reply(ip)
        return None

    def refused(self, ip: str) -> None:
        """A recipient was refused (forged, expired, unknown): enough of them in the window blocks the address."""
        if self.exempt(ip):
            return
        recent = self._recent(self._refused[ip], self.limits.refused_window_s)
        recent.append(self.clock())
        if len(recent) >= self.limits.refused_recipients:
            self._blocked_until[ip] = self.clock() + self.limits.block_s
            recent.clear()
