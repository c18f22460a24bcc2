"""Render deploy/nats/accounts.conf (NATS users and permissions) from shared/subjects.py.

Least privilege by construction: a service may publish only the subjects of the sections of
`shared/subjects.py` whose header names it as producer (`# --- <family> (producer: <svc>) ---`),
create and update only the streams declared in those sections (or whose subjects it publishes),
manage any consumer on those streams, use on other streams only the durables whose names start
with `<svc>-`, and only the key-value buckets whose names start with `<svc>_`.
A service may also subscribe to its own subjects (live views) and to its own inbox prefix
`_INBOX_<svc>.>` (replies; `shared.jetstream.inbox_prefix` derives it from the user in NATS_URL),
never to another's replies.
Dispatchers get a read-only user limited to `tips.>`. Passwords are never rendered: each user's
password is the server's environment variable `NATS_<SERVICE>_PASSWORD`.

    python deploy/nats/render_accounts.py            # rewrite accounts.conf
    python deploy/nats/render_accounts.py --check    # exit 1 if accounts.conf is stale
"""

import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SUBJECTS_FILE = REPO_ROOT / "shared" / "subjects.py"
ACCOUNTS_FILE = Path(__file__).resolve().parent / "accounts.conf"
SERVICES = ("ingest", "reports", "broadcast", "analytics")
DISPATCHER_SUBJECTS = ("tips.>",)
_CONSTANT = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)\s*(?::[^=]+)?=")
_SECTION = re.compile(
    r"^# --- (?P<family>[^(]+?)(?: \(producer: (?P<producer>[\w.]+)[^)]*\))? -+\s*$"
)
SERVICES_DIR = REPO_ROOT / "services"

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@dataclass
class Grants:
    """What one service may touch."""

    subjects: set[str] = field(default_factory=set)
    streams: set[str] = field(default_factory=set)
    durables: set[str] = field(default_factory=set)
    buckets: set[str] = field(default_factory=set)


def _sections(source: str) -> list[tuple[int, str | None]]:
    """(first line, producer) of every section header, in file order."""
    found: list[tuple[int, str | None]] = []
    for number, line in enumerate(source.splitlines(), start=1):
        if match := _SECTION.match(line):
            found.append((number, match["producer"]))
    return found


def _producer_at(sections: list[tuple[int, str | None]], line: int) -> str | None:
    producer = None
    for start, name in sections:
        if start > line:
            break
        producer = name
    return producer


def collect_grants() -> dict[str, Grants]:
    """Grants per service, read from the constants of shared/subjects.py."""
    from shared import subjects

    source = SUBJECTS_FILE.read_text()
    sections = _sections(source)
    grants: dict[str, Grants] = defaultdict(Grants)
    # Top-level UPPER_CASE assignments (a regex, not `ast`: CPython 3.11.7's ast.parse can fail
    # with "AST constructor recursion depth mismatch" when called deep inside a test runner).
    for number, line in enumerate(source.splitlines(), start=1):
        if match := _CONSTANT.match(line):
            name = match["name"]
            _grant(grants, name, getattr(subjects, name), _producer_at(sections, number))
    # Every service records its own poison messages (shared.dead_letters).
    for service in SERVICES:
        grants[service].subjects.add(subjects.dead_letter_subject(service))
        grants[service].streams.add(subjects.DEAD_LETTERS_STREAM.name)
    # A stream declared outside its producer's section belongs to whoever publishes its subjects.
    for value in vars(subjects).values():
        if isinstance(value, subjects.StreamSpec):
            for grant in list(grants.values()):
                if all(any(covers(p, s) for p in grant.subjects) for s in value.subjects):
                    grant.streams.add(value.name)
    return dict(grants)


def covers(pattern: str, subject: str) -> bool:
    """True if every subject matching `subject` (itself maybe a wildcard) matches `pattern`."""
    want, have = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(have) > index
        if index >= len(have) or (token != "*" and token != have[index]) or have[index] == ">":
            return False
    return len(want) == len(have)


def _grant(grants: dict[str, Grants], name: str, value: object, producer: str | None) -> None:
    from shared.subjects import StreamSpec

    if isinstance(value, StreamSpec):
        if producer:
            grants[producer].streams.add(value.name)
            grants[producer].subjects.update(value.subjects)
    elif not isinstance(value, str):
        return
    elif name.endswith("_DURABLE_PREFIX"):
        return  # per-key durables (`reports-desk-<ward>`) live on the owner's own stream
    elif name.endswith("_DURABLE"):
        grants[value.split("-", 1)[0]].durables.add(value)
    elif name.endswith("_BUCKET"):
        for user in _bucket_users(value, producer):
            grants[user].buckets.add(value)
    elif producer and name.endswith("_PREFIX"):
        grants[producer].subjects.add(f"{value}.>")
    elif producer and re.fullmatch(r"[a-z0-9_-]+(\.([a-z0-9_-]+|\*|>))+", value):
        grants[producer].subjects.add(value)


def _bucket_users(bucket: str, producer: str | None) -> list[str]:
    """A bucket's users: the service its section or name says, or, for a section produced by
    shared code (`producer: shared.zalo.client`), every service that imports that module."""
    if producer in SERVICES:
        return [producer]
    if producer and producer.startswith("shared."):
        statement = f"from {producer} import"
        return [
            service
            for service in SERVICES
            if any(statement in f.read_text() for f in (SERVICES_DIR / service).rglob("*.py"))
        ]
    return [bucket.split("_", 1)[0]]


def publish_allow(grants: Grants) -> list[str]:
    """Every subject a service may publish to, JetStream API included."""
    allow = sorted(grants.subjects)
    allow += ["$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.INFO.*"]
    for stream in sorted(grants.streams) + [f"KV_{b}" for b in sorted(grants.buckets)]:
        allow += [f"$JS.API.STREAM.CREATE.{stream}", f"$JS.API.STREAM.UPDATE.{stream}"]
    for stream in sorted(grants.streams):
        # Any consumer on the service's own streams (e.g. one durable per ward desk).
        allow += [
            f"$JS.API.CONSUMER.*.{stream}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.*",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*",
            f"$JS.ACK.{stream}.>",
        ]
    for bucket in sorted(grants.buckets):
        allow += [
            f"$KV.{bucket}.>",
            f"$JS.API.DIRECT.GET.KV_{bucket}.>",
            f"$JS.API.STREAM.MSG.GET.KV_{bucket}",
        ]
    for durable in sorted(grants.durables):
        allow += [
            f"$JS.API.CONSUMER.INFO.*.{durable}",
            f"$JS.API.CONSUMER.CREATE.*.{durable}",
            f"$JS.API.CONSUMER.CREATE.*.{durable}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.*.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.*.{durable}",
            f"$JS.ACK.*.{durable}.>",
        ]
    return allow


def _quoted(items: list[str] | tuple[str, ...], indent: str) -> str:
    return "\n".join(f'{indent}"{item}"' for item in items)


def _user(service: str, grants: Grants) -> str:
    return f"""      {{
        user: "{service}"
        password: $NATS_{service.upper()}_PASSWORD
        permissions: {{
          publish: {{
            allow: [
{_quoted(publish_allow(grants), " " * 14)}
            ]
          }}
          subscribe: {{
            allow: [
{_quoted([f"_INBOX_{service}.>", *sorted(grants.subjects)], " " * 14)}
            ]
          }}
        }}
      }}"""


def render() -> str:
    grants = collect_grants()
    services = sorted(set(SERVICES) | {s for s in grants if s in SERVICES or grants[s].subjects})
    users = "\n".join(_user(service, grants.get(service, Grants())) for service in services)
    return f"""# GENERATED from shared/subjects.py by deploy/nats/render_accounts.py: do not edit.
# Accounts, users and permissions of the binhyen NATS cluster (included by nats.conf).
# Each service publishes only its own subjects, creates only its own streams and key-value
# buckets, and uses only durables named `<service>-...`. Passwords come from the server's
# environment (`NATS_<SERVICE>_PASSWORD`; a `$2a$...` value is a bcrypt hash), never from here.

accounts {{
  SYS {{
    users: [ {{ user: "sys", password: $NATS_SYS_PASSWORD }} ]
  }}

  BINHYEN {{
    jetstream: enabled
    users: [
{users}
      {{
        user: "dispatcher"
        password: $NATS_DISPATCHER_PASSWORD
        permissions: {{
          publish: {{ deny: [">"] }}
          subscribe: {{ allow: [{", ".join(f'"{s}"' for s in DISPATCHER_SUBJECTS)}] }}
        }}
      }}
    ]
  }}
}}

system_account: SYS
"""


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if ACCOUNTS_FILE.read_text() != text:
            print(f"{ACCOUNTS_FILE} is stale: run python deploy/nats/render_accounts.py")
            return 1
        return 0
    ACCOUNTS_FILE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
