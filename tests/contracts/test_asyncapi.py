"""The AsyncAPI documents of all four services, generated from the code, name exactly the
subjects `shared/subjects.py` declares: every channel is a declared subject (or a declared
subscription filter), and every declared subject is in some service's document."""

import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from services.analytics.asyncapi import specification as analytics_spec
from services.analytics.settings import AnalyticsSettings
from services.broadcast.asyncapi import specification as broadcast_spec
from services.broadcast.settings import BroadcastSettings
from services.ingest.asyncapi import specification as ingest_spec
from services.reports.asyncapi import specification as reports_spec
from services.reports.settings import ReportsSettings
from shared import subjects

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS: dict[str, Callable[[], str]] = {
    "ingest": ingest_spec,
    "reports": lambda: reports_spec(ReportsSettings()),
    "broadcast": lambda: broadcast_spec(BroadcastSettings()),
    "analytics": lambda: analytics_spec(AnalyticsSettings()),
}
_SUBJECT = re.compile(r"[a-z0-9_-]+(\.([a-z0-9_{}-]+|\*|>))+")


def addresses(service: str) -> set[str]:
    document = json.loads(DOCUMENTS[service]())
    return {channel["address"] for channel in document["channels"].values()}


def declared() -> dict[str, re.Pattern[str]]:
    """Every subject `shared/subjects.py` declares, as a pattern a channel address matches: its
    constants (not prefixes, durables or buckets), its streams' subjects, and its builders
    (`*_subject`) called with `{parameter}` placeholders, each of which stands for a `{name}`
    token or one concrete token (`zalo.event.{kind}` is documented kind by kind)."""
    found: dict[str, re.Pattern[str]] = {}
    for name, value in vars(subjects).items():
        if isinstance(value, subjects.StreamSpec):
            for subject in value.subjects:
                found[subject] = re.compile(re.escape(subject))
        elif isinstance(value, str) and name.isupper() and not name.endswith("_PREFIX"):
            if _SUBJECT.fullmatch(value):
                found[value] = re.compile(re.escape(value))
        elif inspect.isfunction(value) and name.endswith("_subject"):
            params = inspect.signature(value).parameters
            subject = value(*(f"{{{p}}}" for p in params))
            pattern = re.escape(subject)
            for p in params:
                pattern = pattern.replace(re.escape(f"{{{p}}}"), r"(\{[a-z_]+\}|[a-z0-9_-]+)")
            found[subject] = re.compile(pattern)
    return found


@pytest.mark.parametrize("service", DOCUMENTS)
def test_every_channel_is_a_declared_subject(service: str) -> None:
    patterns = declared().values()
    unknown = {a for a in addresses(service) if not any(p.fullmatch(a) for p in patterns)}
    assert not unknown, f"{service} documents subjects shared/subjects.py does not declare"


def test_every_declared_subject_is_documented() -> None:
    documented = set().union(*(addresses(service) for service in DOCUMENTS))
    missing = [
        subject
        for subject, pattern in declared().items()
        if not any(pattern.fullmatch(address) for address in documented)
        and not subject.endswith(">")  # a stream's catch-all, not a subject anyone publishes
    ]
    assert not missing, f"declared but in no AsyncAPI document: {missing}"


@pytest.mark.parametrize("service", DOCUMENTS)
def test_the_stored_document_is_the_generated_one(service: str) -> None:
    """docs/asyncapi/<service>.json is regenerated whenever a channel changes
    (`python -m services.<service>.asyncapi --out docs/asyncapi/<service>.json`)."""
    stored = json.loads((ROOT / "docs" / "asyncapi" / f"{service}.json").read_text())
    generated = json.loads(DOCUMENTS[service]())
    assert stored["channels"].keys() == generated["channels"].keys()
    assert stored["components"] == generated["components"]


def test_the_snapshot_poller_publishes_the_declared_subject() -> None:
    assert AnalyticsSettings().snapshot_subject == subjects.ANALYTICS_ZALO_SNAPSHOT
