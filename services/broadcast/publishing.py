"""Publishing many JetStream messages at once: all sent, then all acknowledgements awaited."""

import asyncio
from collections.abc import Sequence

from nats.js import JetStreamContext

# (subject, body, Nats-Msg-Id)
Message = tuple[str, bytes, str]


async def publish_all(js: JetStreamContext, messages: Sequence[Message], timeout: float) -> None:
    """Publish `messages` pipelined (nats-py's `publish_async`: no request round trip each) and
    wait until the stream has stored every one; raises on the first refusal or after
    `timeout` seconds. A message the stream already had (same `Nats-Msg-Id`) counts as stored."""
    futures = [
        await js.publish_async(subject, body, headers={"Nats-Msg-Id": msg_id})
        for subject, body, msg_id in messages
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*futures), timeout)
    finally:
        for future in futures:  # a lost acknowledgement must not hold a pending slot forever
            if not future.done():
                future.cancel()
