"""The AsyncAPI document of the reports service: what it consumes and what it publishes.

`python -m services.reports.asyncapi [--yaml] [--out docs/asyncapi/reports.json]`
"""

import argparse
import sys
from collections.abc import Sequence

from faststream.nats import JStream, NatsBroker, PullSub
from faststream.specification import AsyncAPI

from services.reports import intake_consumer
from services.reports.app import create_broker
from services.reports.settings import ReportsSettings
from shared.events.tips import TipEscalated, TipTriaged, TipUpdated
from shared.events.zalo import ZaloEventReceived
from shared.subjects import ZALO_EVENTS_ALL

TIP_CHANNELS = (
    (
        "tips.triaged.{ward}.{priority}",
        TipTriaged,
        "A new case for a ward's dispatchers; ward is an ASCII slug or `unknown`.",
    ),
    ("tips.updated.{ward}", TipUpdated, "Every later change to a case of the ward."),
    ("tips.escalated.{ward}", TipEscalated, "An urgent case not acknowledged in time."),
)


async def _documented_only(event: ZaloEventReceived) -> None:
    raise RuntimeError("the documentation broker never handles messages")


def documented_broker(settings: ReportsSettings) -> NatsBroker:
    """The service's broker, with its dynamic-subject publishers declared for the document."""
    broker = create_broker(settings)
    # The service pulls these in batches itself (`intake_consumer.IntakeConsumer`); declared here so
    # the document shows the subscription as the consumer configures it.
    broker.subscriber(
        ZALO_EVENTS_ALL,
        stream=JStream(settings.zalo_events_stream, declare=False),
        durable=settings.intake_durable,
        pull_sub=PullSub(batch_size=intake_consumer.BATCH),
        config=intake_consumer.intake_consumer_config(settings),
        title="reports-intake",
        description="Citizens' messages (OA chats and group messages) to triage, in batches.",
    )(_documented_only)
    stream = JStream(settings.tips_stream, declare=False)
    for subject, model, description in TIP_CHANNELS:
        broker.publisher(
            subject,
            stream=stream,
            schema=model,
            title=subject.replace("{", "").replace("}", ""),
            description=description,
        )
    return broker


def specification(settings: ReportsSettings, yaml: bool = False) -> str:
    spec = AsyncAPI(
        documented_broker(settings),
        title="binhyen reports",
        version="1.0.0",
        description="Citizens' messages in, triaged tips out (pseudonyms only).",
    ).to_specification()
    return spec.to_yaml() if yaml else spec.to_json()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--yaml", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    text = specification(ReportsSettings(), yaml=args.yaml)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
