"""Filter language throughput: parse+plan per second, and evaluations per second over dicts and MessageFacts.

Targets (issue 2): at least 10,000 parse+plan per second for filters of 5 to 10 leaves on one core, and at
least 200,000 evaluations per second of a 5-leaf filter. Each figure is the median of several repeats.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import filters

PARSE_TARGET = 10_000
EVAL_TARGET = 200_000
REPEATS = 7

# Realistic filters of 5 to 10 leaves, in both spellings.
TEXTS = [
    'after:2024/01/07 AND (category:Personal OR category:"Team A") AND NOT from:noreply@example.com'
    " has:attachment",
    "after:2023/06/01 before:2024/01/01 from:billing@contoso.com has:attachment NOT is:read importance:high",
    "(category:Receipts OR category:Invoices OR subject:invoice) after:2024/01/01"
    ' NOT from:"no-reply@shop.example" is:unread',
    "is:flagged OR (importance:high AND is:unread AND after:2024/03/01) OR to:ceo@contoso.com"
    " OR cc:ceo@contoso.com",
    'from:alice@example.com OR from:bob@example.com OR from:carol@example.com subject:"quarterly report"'
    " after:2024/01/01 before:2025/01/01 has:attachment category:Finance",
    "after:2024/01/01 before:2024/07/01 (category:Legal OR category:Contracts OR category:NDA)"
    ' NOT from:noreply@example.com NOT subject:"out of office" (is:flagged OR importance:high)'
    " has:attachment",
]
FIVE_LEAF = (
    'after:2024/01/07 (category:Personal OR category:"Team A") NOT from:noreply@example.com has:attachment'
)


def _per_second(run: Callable[[], int]) -> float:
    rates = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        done = run()
        rates.append(done / (time.perf_counter() - started))
    return statistics.median(rates)


def _report(label: str, rate: float, target: int) -> None:
    print(f"{label:<42} {rate:>11,.0f}/s  target {target:>7,}/s  ratio {rate / target:5.2f}")


def _messages(n: int) -> list[dict]:
    rng = random.Random(7)
    start = datetime(2023, 12, 1, tzinfo=UTC)
    people = ["noreply@example.com", "alice@example.com", "bob@contoso.com", "carol@fabrikam.com"]
    out = []
    for i in range(n):
        out.append(
            {
                "id": f"AAMkAD{i:08d}",
                "receivedDateTime": (start + timedelta(minutes=rng.randrange(90 * 24 * 60))).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "categories": rng.sample(["Personal", "Team A", "Receipts", "Finance"], rng.randrange(3)),
                "from": {"emailAddress": {"name": "x", "address": rng.choice(people)}},
                "toRecipients": [{"emailAddress": {"name": "y", "address": rng.choice(people)}}],
                "ccRecipients": [],
                "subject": f"Message {i}",
                "importance": rng.choice(["low", "normal", "normal", "high"]),
                "isRead": rng.random() < 0.6,
                "flag": {"flagStatus": rng.choice(["notFlagged", "notFlagged", "flagged"])},
                "hasAttachments": rng.random() < 0.3,
            }
        )
    return out


def main() -> None:
    carbon = [filters.to_carbon(filters.parse(t)) for t in TEXTS]
    carbon_json = [json.dumps(c) for c in carbon]
    leaves = sorted({filters.parse(t).leaves for t in TEXTS})
    print(f"filters: {len(TEXTS)} realistic filters of {leaves[0]}-{leaves[-1]} leaves")

    rounds = 400

    def parse_and_plan_text() -> int:
        for _ in range(rounds):
            for text in TEXTS:
                filters.plan(filters.parse(text), "list")
        return rounds * len(TEXTS)

    def parse_and_plan_carbon() -> int:
        for _ in range(rounds):
            for value in carbon:
                filters.plan(filters.parse(value), "list")
        return rounds * len(carbon)

    def parse_and_plan_json() -> int:
        for _ in range(rounds):
            for value in carbon_json:
                filters.plan(filters.parse(value), "list")
        return rounds * len(carbon_json)

    for label, run in (
        ("text", parse_and_plan_text),
        ("Carbon JSON string", parse_and_plan_json),
        ("Carbon dict", parse_and_plan_carbon),
    ):
        _report(f"parse+plan, {label}", _per_second(run), PARSE_TARGET)

    tree = filters.parse(FIVE_LEAF)
    predicate = filters.compile(tree)
    messages = _messages(20_000)
    facts = [filters.MessageFacts.from_graph(m) for m in messages]
    matched = sum(predicate.graph(m) for m in messages)
    print(f"evaluate: a {tree.leaves}-leaf filter over {len(messages):,} messages ({matched:,} match)")

    def over(items: list, call: Callable[[object], bool]) -> Callable[[], int]:
        def run() -> int:
            for item in items:
                call(item)
            return len(items)

        return run

    for label, run in (
        ("Graph dicts, predicate.graph", over(messages, predicate.graph)),
        ("MessageFacts, predicate.facts", over(facts, predicate.facts)),
        ("Graph dicts, predicate(m)", over(messages, predicate)),
        ("MessageFacts, predicate(m)", over(facts, predicate)),
    ):
        _report(f"evaluate, {label}", _per_second(run), EVAL_TARGET)
