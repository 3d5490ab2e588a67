"""Faults on purpose, reproducibly: throttling, random errors, latency, dropped connections, custom rules.

Per mailbox (Graph's unit of throttling for one app) the sandbox enforces:

- at most ``max_in_flight`` (4) requests at once; one more gets 429 ``ApplicationThrottled``
  ("Application is over its MailboxConcurrency limit.");
- at most ``window_requests`` admitted requests per ``window_seconds`` (10,000 per 10 minutes);
- ``Retry-After`` on every 429. A request repeated (same method and URL) before its ``Retry-After`` has
  passed is throttled again and counted as a *violation*.

A profile adds seeded randomness: ``none`` (nothing), ``flaky`` (3 % of requests fail with
429/500/502/503/504,
a little latency, occasional delta replays and empty pages, 504 for pages over 4 MB) and ``hostile`` (a
quarter of requests fail or drop their connection, 10-250 ms latency, 504 over 1 MB). Custom rules fail,
drop, delay or hold the Nth (to N+times-1th) request whose path matches a regular expression. A held request
stays at the server, in flight, until the admin API releases every held request at once: a barrier that lets
a test put requests in flight together without relying on timing. Everything is counted per mailbox and kept
in a bounded request log, both readable through the admin API.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox._errors import GraphFault
from sandbox._options import Profile

LOG_LIMIT = 50_000
HOLD_LIMIT_MS = 60_000  # how long a held request waits for its release unless its rule says otherwise
_STATUS_CODES = {
    429: ("ApplicationThrottled", "Application is over its resource limit."),
    500: ("generalException", "An internal server error occurred."),
    502: ("BadGateway", "The gateway received an invalid response."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry after a delay."),
    504: ("GatewayTimeout", "The gateway timed out."),
    507: ("insufficientStorage", "The mailbox is over its storage quota."),
}


class FaultRule(BaseModel):
    """Fail requests whose path matches ``path`` (a regex, searched, case-insensitive), from the ``nth``."""

    model_config = ConfigDict(extra="forbid")

    path: str
    method: str | None = None
    mailbox: str | None = None
    nth: int = Field(1, ge=1)
    times: int = Field(1, ge=0, description="how many consecutive matches fail; 0 = all from the nth on")
    action: Literal["error", "drop", "delay", "hold"] = Field(
        "error",
        description="error: answer status; drop: break the connection; delay: wait delay_ms; "
        "hold: wait until POST /_sandbox/faults/release (at most delay_ms, or 60 s when 0)",
    )
    status: int = Field(503, ge=400, le=599)
    code: str | None = None
    message: str | None = None
    retry_after: int | None = Field(None, ge=0)
    delay_ms: int = Field(0, ge=0, le=60_000)


class FaultSettings(BaseModel):
    """The whole fault configuration; ``for_profile`` gives the named presets."""

    model_config = ConfigDict(extra="forbid")

    profile: Profile | Literal["custom"] = "none"
    error_rate: float = Field(0.0, ge=0, le=1)
    error_statuses: tuple[int, ...] = (429, 500, 502, 503, 504)
    drop_rate: float = Field(0.0, ge=0, le=1)
    latency_ms: tuple[int, int] = (0, 0)
    retry_after: int = Field(1, ge=0, description="seconds in Retry-After on injected 429s and 503s")
    max_page_bytes: int = Field(0, ge=0, description="504 for list pages larger than this; 0 = no limit")
    delta_replay_rate: float = Field(0.0, ge=0, le=1)
    delta_empty_page_rate: float = Field(0.0, ge=0, le=1)
    max_in_flight: int = Field(4, ge=1)
    window_requests: int = Field(10_000, ge=1)
    window_seconds: float = Field(600.0, gt=0)
    rules: list[FaultRule] = []

    @classmethod
    def for_profile(cls, profile: Profile) -> FaultSettings:
        presets: dict[str, dict[str, Any]] = {
            "none": {},
            "flaky": {
                "error_rate": 0.03,
                "latency_ms": (0, 20),
                "max_page_bytes": 4_000_000,
                "delta_replay_rate": 0.05,
                "delta_empty_page_rate": 0.05,
            },
            "hostile": {
                "error_rate": 0.22,
                "drop_rate": 0.03,
                "latency_ms": (10, 250),
                "max_page_bytes": 1_000_000,
                "delta_replay_rate": 0.2,
                "delta_empty_page_rate": 0.1,
            },
        }
        return cls(profile=profile, **presets[profile])


@dataclass(slots=True)
class MailboxCounters:
    in_flight: int = 0
    max_in_flight: int = 0
    held: int = 0
    requests: int = 0
    throttled: int = 0
    violations: int = 0
    faults: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    window: deque[float] = field(default_factory=deque)

    def public(self) -> dict[str, Any]:
        return {
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "held": self.held,
            "requests": self.requests,
            "throttled": self.throttled,
            "violations": self.violations,
            "faults": self.faults,
            "by_route": dict(self.by_route),
        }


@dataclass(slots=True)
class LogEntry:
    seq: int
    time: float
    method: str
    path: str
    query: str
    mailbox: str | None
    route: str
    status: int = 0
    code: str | None = None
    in_flight: int = 0
    duration_ms: float = 0.0
    request_id: str = ""
    client_request_id: str | None = None
    retry_after: int | None = None
    violation: bool = False
    fault: str | None = None
    batch: str | None = None


@dataclass(slots=True)
class Admission:
    """What ``Faults.admit`` decided for a request that may proceed."""

    latency: float = 0.0
    drop: bool = False
    hold: float = 0.0  # seconds to wait at most for the release of held requests; 0 = not held


@dataclass(eq=False, slots=True)
class _Held:
    """One request that a ``hold`` rule keeps waiting (compared by identity)."""

    counters: MailboxCounters | None


class Faults:
    """Throttling state, injected faults, counters and the request log of one sandbox."""

    def __init__(self, settings: FaultSettings, seed: int) -> None:
        self.seed = seed
        self.configure(settings)
        self.log: deque[LogEntry] = deque(maxlen=LOG_LIMIT)
        self.counters: dict[str, MailboxCounters] = {}
        self.held = 0
        self._gate: asyncio.Event | None = None
        self._holding: list[_Held] = []
        self._seq = 0

    def configure(self, settings: FaultSettings) -> None:
        self.settings = settings
        self.rng = random.Random(f"faults:{self.seed}:{settings.profile}")
        self._rule_hits = [0] * len(settings.rules)
        self._rule_patterns = [re.compile(rule.path, re.IGNORECASE) for rule in settings.rules]
        self._retry_until: dict[tuple[str, str, str], float] = {}

    def clear(self) -> None:
        """Forget the log, counters and throttling memory (not the settings)."""
        self.log.clear()
        self.counters.clear()
        self._retry_until.clear()
        self._rule_hits = [0] * len(self.settings.rules)

    def counters_for(self, mailbox: str) -> MailboxCounters:
        found = self.counters.get(mailbox)
        if found is None:
            found = self.counters[mailbox] = MailboxCounters()
        return found

    def new_entry(
        self,
        method: str,
        path: str,
        query: str,
        mailbox: str | None,
        route: str,
        request_id: str,
        client_request_id: str | None,
        batch: str | None = None,
    ) -> LogEntry:
        self._seq += 1
        entry = LogEntry(
            self._seq,
            time.time(),
            method,
            path,
            query,
            mailbox,
            route,
            request_id=request_id,
            client_request_id=client_request_id,
            batch=batch,
        )
        self.log.append(entry)
        return entry

    def _throttle(
        self,
        key: tuple[str, str, str],
        counters: MailboxCounters,
        entry: LogEntry,
        seconds: int,
        code: str,
        message: str,
        fault: str,
    ) -> GraphFault:
        counters.throttled += 1
        self._retry_until[key] = time.monotonic() + seconds
        entry.retry_after, entry.fault = seconds, fault
        return GraphFault(429, code, message, {"Retry-After": str(seconds)})

    def admit(self, entry: LogEntry, method: str, path: str, query: str, mailbox: str) -> Admission:
        """Decide the fate of a Graph request to ``mailbox``: raise a ``GraphFault`` or let it through.

        Rules match the path; the Retry-After memory keys on the whole URL (a retry is the same request).
        """
        url = f"{path}?{query}" if query else path
        s = self.settings
        counters = self.counters_for(mailbox)
        counters.requests += 1
        counters.by_route[entry.route] += 1
        now = time.monotonic()
        key = (mailbox, method, url)
        until = self._retry_until.get(key)
        if until is not None and now < until:
            counters.violations += 1
            entry.violation = True
            wait = max(1, math.ceil(until - now))
            raise self._throttle(
                key,
                counters,
                entry,
                wait,
                "ApplicationThrottled",
                "Application is over its resource limit: retried before Retry-After elapsed.",
                "retry-early",
            )
        counters.max_in_flight = max(counters.max_in_flight, counters.in_flight + 1)
        entry.in_flight = counters.in_flight + 1
        if counters.in_flight >= s.max_in_flight:
            raise self._throttle(
                key,
                counters,
                entry,
                max(1, s.retry_after),
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                "concurrency",
            )
        window = counters.window
        while window and window[0] <= now - s.window_seconds:
            window.popleft()
        if len(window) >= s.window_requests:
            wait = max(1, math.ceil(window[0] + s.window_seconds - now))
            raise self._throttle(
                key,
                counters,
                entry,
                wait,
                "ApplicationThrottled",
                "Application is over its MailboxRequests limit.",
                "budget",
            )
        window.append(now)
        admission = Admission()
        for index, rule in enumerate(s.rules):
            if not self._rule_matches(index, rule, method, path, mailbox):
                continue
            self._rule_hits[index] += 1
            hit = self._rule_hits[index]
            if hit < rule.nth or (rule.times and hit >= rule.nth + rule.times):
                continue
            counters.faults += 1
            entry.fault = "rule"
            if rule.action == "drop":
                admission.drop = True
                return admission
            if rule.action == "delay":
                admission.latency += rule.delay_ms / 1000
                continue
            if rule.action == "hold":
                admission.hold = max(admission.hold, _hold_seconds(rule))
                continue
            raise self._error(key, counters, entry, rule.status, rule.code, rule.message, rule.retry_after)
        roll = self.rng.random()
        if roll < s.drop_rate:
            counters.faults += 1
            entry.fault = "drop"
            admission.drop = True
            return admission
        if roll < s.drop_rate + s.error_rate and s.error_statuses:
            counters.faults += 1
            entry.fault = "random"
            status = self.rng.choice(s.error_statuses)
            retry_after = (
                s.retry_after if status == 429 or (status == 503 and self.rng.random() < 0.5) else None
            )
            raise self._error(key, counters, entry, status, None, None, retry_after)
        low, high = s.latency_ms
        if high > 0:
            admission.latency += self.rng.uniform(low, high) / 1000
        return admission

    async def wait(self, admission: Admission, counters: MailboxCounters | None = None) -> None:
        """Spend an admitted request's latency, then hold it (if a rule says so) until ``release``."""
        if admission.latency:
            await asyncio.sleep(admission.latency)
        if not admission.hold:
            return
        if self._gate is None:
            self._gate = asyncio.Event()
        gate, ticket = self._gate, _Held(counters)
        self._holding.append(ticket)
        self._count_held(ticket, 1)
        try:
            await asyncio.wait_for(gate.wait(), admission.hold)
        except TimeoutError:
            pass  # its own time limit, so that a test that never releases cannot hang the server
        finally:
            if ticket in self._holding:  # timed out or cancelled; a release has uncounted it already
                self._holding.remove(ticket)
                self._count_held(ticket, -1)

    def release(self) -> int:
        """Let every held request go on; returns how many there were. Call it on the event loop's thread.

        The counts drop here, not when the requests resume, so a count read right after is already 0.
        """
        released, gate = self._holding, self._gate
        self._holding, self._gate = [], None
        for ticket in released:
            self._count_held(ticket, -1)
        if gate is not None:
            gate.set()
        return len(released)

    def _count_held(self, ticket: _Held, change: int) -> None:
        self.held += change
        if ticket.counters is not None:
            ticket.counters.held += change

    def _rule_matches(self, index: int, rule: FaultRule, method: str, path: str, mailbox: str | None) -> bool:
        if rule.method and rule.method.upper() != method:
            return False
        if rule.mailbox and (mailbox or "").lower() != rule.mailbox.lower():
            return False
        return bool(self._rule_patterns[index].search(path))

    def _error(
        self,
        key: tuple[str, str, str],
        counters: MailboxCounters,
        entry: LogEntry,
        status: int,
        code: str | None,
        message: str | None,
        retry_after: int | None,
    ) -> GraphFault:
        default_code, default_message = _STATUS_CODES.get(status, ("generalException", "Injected failure."))
        if status == 429:
            fault = entry.fault or "random"
            return self._throttle(
                key,
                counters,
                entry,
                retry_after if retry_after is not None else max(1, self.settings.retry_after),
                code or default_code,
                message or default_message,
                fault,
            )
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        entry.retry_after = retry_after
        return GraphFault(status, code or default_code, message or default_message, headers)

    def signin_rule(self, entry: LogEntry, method: str, path: str) -> Admission | GraphFault | None:
        """Custom rules also apply to sign-in paths (no mailbox, no throttling, no random faults)."""
        for index, rule in enumerate(self.settings.rules):
            if rule.mailbox or not self._rule_matches(index, rule, method, path, None):
                continue
            self._rule_hits[index] += 1
            hit = self._rule_hits[index]
            if hit < rule.nth or (rule.times and hit >= rule.nth + rule.times):
                continue
            entry.fault = "rule"
            if rule.action == "drop":
                return Admission(drop=True)
            if rule.action == "delay":
                return Admission(latency=rule.delay_ms / 1000)
            if rule.action == "hold":
                return Admission(hold=_hold_seconds(rule))
            code, message = _STATUS_CODES.get(rule.status, ("generalException", "Injected failure."))
            headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
            return GraphFault(rule.status, rule.code or code, rule.message or message, headers)
        return None

    def entries(
        self, *, mailbox: str | None = None, since: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Log entries after ``since`` (a ``seq``), oldest first, optionally for one mailbox."""
        chosen = [e for e in self.log if e.seq > since and (mailbox is None or e.mailbox == mailbox.lower())]
        return [asdict(e) for e in chosen[:limit]]


def _hold_seconds(rule: FaultRule) -> float:
    return (rule.delay_ms or HOLD_LIMIT_MS) / 1000
