"""AsyncAPI documents of the services, generated from their FastStream brokers (which never
connect for this): `python -m services.<service>.asyncapi [--out docs/asyncapi/<service>.json]`."""

import argparse
from collections.abc import Callable, Sequence

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI


def document(broker: NatsBroker, service: str, description: str) -> str:
    """The AsyncAPI 3 document of `broker`'s subscribers and publishers, as JSON."""
    spec = AsyncAPI(broker, title=f"binhyen {service}", version="1.0.0", description=description)
    return spec.to_specification().to_json()


def write(service: str, generate: Callable[[], str], argv: Sequence[str] | None = None) -> None:
    """The command line of `services.<service>.asyncapi`: write the document to `--out`."""
    parser = argparse.ArgumentParser(description=f"The AsyncAPI document of {service}.")
    parser.add_argument("--out", default=f"docs/asyncapi/{service}.json")
    args = parser.parse_args(argv)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(generate() + "\n")
