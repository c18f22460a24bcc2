"""The benchmark's yardstick: a FastAPI endpoint that only parses the JSON and answers 200.

Served exactly like ingest (`python -m services.ingest`, through `shared.serve`): one uvicorn
process with the same options — uvloop and httptools (uvicorn's "auto" picks both), no access
log, no proxy-headers middleware, uvicorn's logging config off.
"""

import json
import os

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/webhooks/zalo")
async def receive(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    return JSONResponse({"status": "ok", "event_name": body.get("event_name")})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["HTTP_PORT"]),
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
