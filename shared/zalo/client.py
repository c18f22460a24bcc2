"""The one client for every outbound call to the Zalo OA API (reference §1, §4, §5, §7, §8).

    async with ZaloClient(settings, nats=nc) as zalo:
        sent = await zalo.send_text(user_id, "Cảm ơn bạn đã báo tin.")

With a connected nats-py client the token pair and the rate limits are shared by every replica
through JetStream key-value buckets; without one they are kept in this process only.
Every call: rate slot for its family -> fresh access token (`access_token` header) -> HTTP ->
check `error` -> typed exception. Calls are retried only when that is safe: reads on transient
failures, sends only when Zalo surely did not act (-32, HTTP 429, connection not made).

HTTP goes through one aiohttp session per client (keep-alive pool of `zalo_http_connections`):
it costs about a tenth of httpx's CPU per call, which matters at thousands of sends per second
(see `bench/zalo_client.py`). Timeouts are per phase, each `zalo_http_timeout`: getting a
connection (pool wait + connect: the request was surely not sent) and each socket read (it may
have been). A proxy comes from HTTPS_PROXY / HTTP_PROXY / NO_PROXY, resolved once per client;
TLS is verified against the system's CA store.
"""

import asyncio
import json
import logging
import random
import time
import unicodedata
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import aiohttp
from nats.aio.client import Client as NatsClient
from nats.js.api import KeyValueConfig
from pydantic import BaseModel, ValidationError

from shared.jetstream import ensure_key_value
from shared.settings import ZaloSettings
from shared.zalo.errors import (
    AccessTokenInvalid,
    InvalidPayload,
    RateLimited,
    TokenRefreshFailed,
    UnexpectedZaloError,
    ZaloError,
    ZaloHttpError,
    error_for,
)
from shared.zalo.models import (
    ArticleCreated,
    ArticleStats,
    BroadcastTarget,
    FollowerPage,
    GroupMemberPage,
    GroupPage,
    OaInfo,
    SentMessage,
    TokenPair,
    UserProfile,
)
from shared.zalo.ratelimit import KvRateStore, MemoryRateStore, RateLimiter, RateStore
from shared.zalo.telemetry import ZaloTelemetry
from shared.zalo.tokens import KvTokenStore, MemoryTokenStore, TokenKeeper, TokenStore

log = logging.getLogger(__name__)

Family = Literal["message", "group", "broadcast", "read", "upload"]
MAX_TEXT_LENGTH = 2000


def normalize_text(text: str) -> str:
    """NFC-normalize message text and check it against Zalo's 2,000-character limit."""
    normalized = unicodedata.normalize("NFC", text)
    if not normalized.strip():
        raise InvalidPayload(-201, "text is empty")
    if len(normalized) > MAX_TEXT_LENGTH:
        raise InvalidPayload(-201, f"text is {len(normalized)} characters, limit {MAX_TEXT_LENGTH}")
    return normalized


def _media_payload(media_type: str, image_url: str | None, attachment_id: str | None) -> Any:
    if (image_url is None) == (attachment_id is None):
        raise InvalidPayload(-201, "give exactly one of image_url and attachment_id")
    element: dict[str, str] = {"media_type": media_type}
    if image_url is not None:
        element["url"] = image_url
    else:
        element["attachment_id"] = attachment_id or ""
    return {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "media", "elements": [element]},
        }
    }


Model = TypeVar("Model", bound=BaseModel)


@contextmanager
def _expected_shape(what: str) -> Iterator[None]:
    """Turn a Zalo answer of an unexpected shape into a `ZaloError`, not a crash."""
    try:
        yield
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        raise UnexpectedZaloError(0, f"unexpected {what} in Zalo's answer: {exc}") from exc


def _parse(model: type[Model], data: dict[str, Any]) -> Model:
    with _expected_shape(model.__name__):
        return model.model_validate(data)


def _field(data: dict[str, Any], name: str) -> str:
    with _expected_shape(name):
        return str(data[name])


# Failures before the request left: no connection could be had (refused, DNS, pool or connect
# timeout). Anything later (read timeout, reset, disconnect) may have reached Zalo.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)
_JSON_HEADERS = {"Content-Type": "application/json"}


def transport_error(exc: BaseException) -> ZaloHttpError:
    """An aiohttp failure as a retryable `ZaloHttpError`: may the request have reached Zalo?"""
    not_sent = isinstance(exc, _NOT_SENT)
    return ZaloHttpError(
        0, f"{type(exc).__name__}: {exc}", retryable=True, maybe_delivered=not not_sent
    )


def env_proxy(url: str) -> str | None:
    """The proxy for `url` from HTTP(S)_PROXY / NO_PROXY (as httpx honoured them), or None.

    Resolved once per client rather than per request (aiohttp's `trust_env` reads the
    environment on every request)."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _status_error(status: int, headers: Mapping[str, str]) -> ZaloHttpError:
    retry_after: float | None = None
    if header := headers.get("Retry-After"):
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    return ZaloHttpError(
        status,
        f"HTTP {status}",
        retryable=status == 429 or status >= 500,
        maybe_delivered=status >= 500 and status != 503,
        retry_after=retry_after,
    )


class ZaloClient:
    """Async Zalo OA API client with shared tokens, shared rate limits and safe retries."""

    def __init__(self, settings: ZaloSettings, nats: NatsClient | None = None) -> None:
        self.settings = settings
        self._nats = nats
        self._api_base = settings.zalo_api_base.rstrip("/")
        self._oauth_url = settings.zalo_oauth_base.rstrip("/") + "/v4/oa/access_token"
        self._api_proxy = env_proxy(self._api_base)
        self._oauth_proxy = env_proxy(self._oauth_url)
        self._http: aiohttp.ClientSession | None = None
        self._keeper: TokenKeeper | None = None
        self._limiter: RateLimiter | None = None
        self._telemetry = ZaloTelemetry()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the HTTP pool and the shared token and rate buckets (or in-process fallbacks)."""
        s = self.settings
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=s.zalo_http_connections),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=s.zalo_http_timeout,
                    sock_connect=s.zalo_http_timeout,
                    sock_read=s.zalo_http_timeout,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        token_store: TokenStore
        rate_store: RateStore
        if self._nats is None:
            token_store, rate_store = MemoryTokenStore(), MemoryRateStore()
        else:
            js = self._nats.jetstream()
            token_kv = await ensure_key_value(js, self._bucket(s.zalo_token_bucket))
            rate_kv = await ensure_key_value(js, self._bucket(s.zalo_rate_bucket))
            token_store, rate_store = KvTokenStore(token_kv), KvRateStore(rate_kv)
        self._keeper = TokenKeeper(
            token_store,
            self._refresh_with_zalo,
            margin=self.settings.zalo_refresh_margin,
            lease=self.settings.zalo_refresh_lease,
            seed=self._seed_pair(),
        )
        self._limiter = RateLimiter(
            rate_store, s.zalo_rate_limits, s.zalo_rate_burst, block=s.zalo_rate_block_seconds
        )
        self._telemetry.configured(s.zalo_rate_limits)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- messages -------------------------------------------------------------------------

    async def send_text(
        self, user_id: str, text: str, quote_message_id: str | None = None
    ) -> SentMessage:
        """A customer-service text to one user (`POST /v3.0/oa/message/cs`)."""
        message: dict[str, Any] = {"text": normalize_text(text)}
        if quote_message_id:
            message["quote_message_id"] = quote_message_id
        body = {"recipient": {"user_id": user_id}, "message": message}
        data = await self._call("POST", "/v3.0/oa/message/cs", "message", json_body=body)
        return _parse(SentMessage, data)

    async def send_image(
        self, user_id: str, *, image_url: str | None = None, attachment_id: str | None = None
    ) -> SentMessage:
        """A customer-service image (by public URL or uploaded `attachment_id`) to one user."""
        message = _media_payload("image", image_url, attachment_id)
        body = {"recipient": {"user_id": user_id}, "message": message}
        data = await self._call("POST", "/v3.0/oa/message/cs", "message", json_body=body)
        return _parse(SentMessage, data)

    async def send_group_text(self, group_id: str, text: str) -> SentMessage:
        """A text to an OA-owned GMF group (`POST /v3.0/oa/group/message`)."""
        body = {"recipient": {"group_id": group_id}, "message": {"text": normalize_text(text)}}
        data = await self._call("POST", "/v3.0/oa/group/message", "group", json_body=body)
        return _parse(SentMessage, {"group_id": group_id, **data})

    async def send_group_image(
        self, group_id: str, *, image_url: str | None = None, attachment_id: str | None = None
    ) -> SentMessage:
        """An image to an OA-owned GMF group."""
        message = _media_payload("image", image_url, attachment_id)
        body = {"recipient": {"group_id": group_id}, "message": message}
        data = await self._call("POST", "/v3.0/oa/group/message", "group", json_body=body)
        return _parse(SentMessage, {"group_id": group_id, **data})

    async def broadcast_article(
        self, article_id: str, target: BroadcastTarget | None = None
    ) -> SentMessage:
        """Broadcast an article to followers (`POST /v2.0/oa/message`; articles only)."""
        target_payload = (target or BroadcastTarget()).to_payload(
            self.settings.zalo_broadcast_target_style
        )
        message = _media_payload("article", None, article_id)
        body = {"recipient": {"target": target_payload}, "message": message}
        data = await self._call("POST", "/v2.0/oa/message", "broadcast", json_body=body)
        return _parse(SentMessage, data)

    async def upload_image(
        self, content: bytes, filename: str = "image.jpg", content_type: str = "image/jpeg"
    ) -> str:
        """Upload a jpg/png (<= 1 MB) for group/1:1 images; the `attachment_id` lasts ~7 days."""
        files = {"file": (filename, content, content_type)}
        data = await self._call("POST", "/v2.0/oa/upload/image", "upload", files=files)
        return _field(data, "attachment_id")

    # --- articles -------------------------------------------------------------------------

    async def create_article(
        self,
        title: str,
        body: str,
        *,
        author: str | None = None,
        cover_url: str | None = None,
        description: str | None = None,
    ) -> ArticleCreated:
        """Create a normal article; Zalo does it asynchronously and returns a `token`."""
        payload: dict[str, Any] = {
            "type": "normal",
            "title": unicodedata.normalize("NFC", title),
            "body": [{"type": "text", "content": unicodedata.normalize("NFC", body)}],
            "status": "show",
            "comment": "show",
        }
        if author:
            payload["author"] = author
        if description:
            payload["description"] = unicodedata.normalize("NFC", description)
        if cover_url:
            payload["cover"] = {"cover_type": "photo", "photo_url": cover_url, "status": "show"}
        data = await self._call("POST", "/v2.0/article/create", "broadcast", json_body=payload)
        return _parse(ArticleCreated, data)

    async def article_id_for(self, token: str) -> str:
        """The article id behind a `create_article` token (`POST /v2.0/article/verify`, UNC)."""
        data = await self._call(
            "POST", "/v2.0/article/verify", "read", json_body={"token": token}, idempotent=True
        )
        return _field(data, "id")

    async def list_articles(
        self, offset: int = 0, limit: int = 10, kind: Literal["normal", "video"] = "normal"
    ) -> list[ArticleStats]:
        """One page of OA articles with whatever view/share counts Zalo returned."""
        params = {"offset": offset, "limit": limit, "type": kind}
        data = await self._call("GET", "/v2.0/article/getslice", "read", params=params)
        with _expected_shape("article list"):
            return [self._article_stats(item) for item in data.get("medias", [])]

    # --- followers, users, OA -------------------------------------------------------------

    async def get_oa_info(self) -> OaInfo:
        """The OA's identity and `num_follower` (`GET /v2.0/oa/getoa`)."""
        return _parse(OaInfo, await self._call("GET", "/v2.0/oa/getoa", "read"))

    async def list_followers(self, offset: int = 0, count: int = 50) -> FollowerPage:
        """One page (count <= 50) of follower ids (`GET /v3.0/oa/user/getlist`)."""
        query = {"offset": offset, "count": count, "is_follower": "true"}
        data = await self._call("GET", "/v3.0/oa/user/getlist", "read", data_param=query)
        with _expected_shape("follower list"):
            users = data.get("users", [])
            return FollowerPage(
                total=int(data.get("total", len(users))),
                count=int(data.get("count", len(users))),
                offset=int(data.get("offset", offset)),
                user_ids=[str(user["user_id"]) for user in users],
            )

    async def get_user_profile(self, user_id: str) -> UserProfile:
        """A user's profile (`GET /v3.0/oa/user/detail`)."""
        query = {"user_id": user_id}
        data = await self._call("GET", "/v3.0/oa/user/detail", "read", data_param=query)
        return _parse(UserProfile, {"user_id": user_id, **data})

    # --- groups ---------------------------------------------------------------------------

    async def list_groups(self, offset: int = 0, count: int = 50) -> GroupPage:
        """The OA's GMF groups (`GET /v3.0/oa/group/getgroupsofoa`)."""
        params = {"offset": offset, "count": count}
        data = await self._call("GET", "/v3.0/oa/group/getgroupsofoa", "read", params=params)
        return _parse(GroupPage, data)

    async def list_group_members(
        self, group_id: str, offset: int = 0, count: int = 50
    ) -> GroupMemberPage:
        """Members of one GMF group (`GET /v3.0/oa/group/listmember`)."""
        params = {"group_id": group_id, "offset": offset, "count": count}
        data = await self._call("GET", "/v3.0/oa/group/listmember", "read", params=params)
        return _parse(GroupMemberPage, data)

    # --- tokens ---------------------------------------------------------------------------

    async def refresh_access_token(self) -> TokenPair:
        """Refresh now (single-flight across replicas) and return the new stored pair."""
        return await self._token_keeper().refresh(stale=None)

    async def store_token_pair(self, pair: TokenPair) -> None:
        """Replace the shared token pair (e.g. after a human re-consented)."""
        await self._token_keeper().store(pair)

    async def exchange_authorization_code(self, code: str, code_verifier: str) -> TokenPair:
        """Trade an OAuth v4 `code` for a token pair and store it for every replica."""
        pair = await self._oauth({"code": code, "grant_type": "authorization_code",
                                  "code_verifier": code_verifier})  # fmt: skip
        await self.store_token_pair(pair)
        return pair

    # --- plumbing -------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("ZaloClient used before start(); use `async with ZaloClient(...)`")
        return self._http

    def _token_keeper(self) -> TokenKeeper:
        if self._keeper is None:
            raise RuntimeError("ZaloClient used before start(); use `async with ZaloClient(...)`")
        return self._keeper

    def _bucket(self, name: str) -> KeyValueConfig:
        return KeyValueConfig(
            bucket=name, history=1, ttl=0.0, replicas=self.settings.zalo_kv_replicas
        )

    def _seed_pair(self) -> TokenPair | None:
        s = self.settings
        if not s.zalo_access_token or not s.zalo_refresh_token:
            return None
        return TokenPair(
            access_token=s.zalo_access_token,
            refresh_token=s.zalo_refresh_token,
            expires_at=time.time() + s.zalo_access_token_ttl,
        )

    def _article_stats(self, item: dict[str, Any]) -> ArticleStats:
        def first(names: list[str]) -> int | None:
            for name in names:
                if item.get(name) is not None:
                    return int(item[name])
            return None

        return ArticleStats(
            article_id=str(item["id"]),
            title=item.get("title"),
            status=item.get("status"),
            create_date=item.get("create_date"),
            update_date=item.get("update_date"),
            views=first(self.settings.zalo_article_view_fields),
            shares=first(self.settings.zalo_article_share_fields),
        )

    async def _call(
        self,
        method: str,
        path: str,
        family: Family,
        *,
        params: dict[str, Any] | None = None,
        data_param: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        """One API call with rate limiting, token refresh on -216/-220 and bounded retries."""
        if self._limiter is None:
            raise RuntimeError("ZaloClient used before start(); use `async with ZaloClient(...)`")
        safe_to_repeat = method == "GET" if idempotent is None else idempotent
        if data_param is not None:
            params = {**(params or {}), "data": json.dumps(data_param, separators=(",", ":"))}
        started = time.monotonic()
        attempt, refreshed = 0, False
        while True:
            attempt += 1
            self._telemetry.rate_limited(family, await self._limiter.acquire(family))
            token = await self._token_keeper().access_token()
            try:
                with self._telemetry.call(method, path, family):
                    return await self._request(method, path, token, params, json_body, files)
            except AccessTokenInvalid:
                if refreshed:
                    raise
                refreshed, attempt = True, attempt - 1  # the refresh retry is not a backoff retry
                await self._token_keeper().refresh(stale=token)
            except ZaloError as exc:
                delay = self._retry_delay(exc, attempt, started, safe_to_repeat)
                if delay is None:
                    raise
                log.warning(
                    "zalo call failed, retrying",
                    extra={"path": path, "code": exc.code, "attempt": attempt, "delay": delay},
                )
                await asyncio.sleep(delay)

    def _retry_delay(
        self, exc: ZaloError, attempt: int, started: float, safe_to_repeat: bool
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when the call must not be retried."""
        if not exc.retryable:
            return None
        if not safe_to_repeat and getattr(exc, "maybe_delivered", False):
            return None
        s = self.settings
        if attempt >= s.zalo_retry_attempts:
            return None
        ceiling = min(s.zalo_retry_max_delay, s.zalo_retry_base_delay * 2 ** (attempt - 1))
        delay = random.uniform(0, ceiling)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), s.zalo_retry_max_delay))
        if time.monotonic() - started + delay > s.zalo_retry_total:
            return None
        return delay

    async def _request(
        self,
        method: str,
        path: str,
        token: str,
        params: dict[str, Any] | None,
        json_body: dict[str, Any] | None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        headers = {"access_token": token}
        payload: bytes | aiohttp.FormData | None = None
        if json_body is not None:
            payload = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
            headers.update(_JSON_HEADERS)
        elif files is not None:
            payload = aiohttp.FormData()
            for name, (filename, content, content_type) in files.items():
                payload.add_field(name, content, filename=filename, content_type=content_type)
        status, response_headers, raw = await self._send(
            method,
            self._api_base + path,
            self._api_proxy,
            params=params,
            data=payload,
            headers=headers,
        )
        body = self._envelope(status, response_headers, raw)
        with _expected_shape("error code"):
            code = int(body.get("error", 0) or 0)
        if code != 0:
            error = error_for(code, str(body.get("message", "")))
            header = response_headers.get("Retry-After")
            if isinstance(error, RateLimited) and header and header.isdigit():
                error.retry_after = float(header)
            raise error
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    async def _send(
        self,
        method: str,
        url: str,
        proxy: str | None,
        *,
        params: dict[str, Any] | None = None,
        data: bytes | aiohttp.FormData | dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One HTTP exchange: (status, headers, body); transport failures as `ZaloHttpError`."""
        try:
            async with self._session().request(
                method, url, params=params, data=data, headers=headers, proxy=proxy
            ) as response:
                return response.status, response.headers, await response.read()
        except _TRANSPORT_ERRORS as exc:
            raise transport_error(exc) from exc

    @staticmethod
    def _envelope(status: int, headers: Mapping[str, str], raw: bytes) -> dict[str, Any]:
        if status != 200:
            raise _status_error(status, headers)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ZaloHttpError(
                200, "response is not JSON", retryable=False, maybe_delivered=True
            ) from exc
        if not isinstance(body, dict):
            raise ZaloHttpError(
                200, "response is not an object", retryable=False, maybe_delivered=True
            )
        return body

    async def _refresh_with_zalo(self, refresh_token: str) -> TokenPair:
        form = {"refresh_token": refresh_token, "grant_type": "refresh_token"}
        with self._telemetry.refresh():
            return await self._oauth(form)

    async def _oauth(self, form: dict[str, str]) -> TokenPair:
        """`POST /v4/oa/access_token`; never retried (a refresh token is single-use)."""
        s = self.settings
        status, headers, raw = await self._send(
            "POST",
            self._oauth_url,
            self._oauth_proxy,
            data={"app_id": s.zalo_app_id, **form},
            headers={"secret_key": s.zalo_app_secret_key},
        )
        body = self._envelope(status, headers, raw)
        if not body.get("access_token") or not body.get("refresh_token"):
            code = int(body.get("error", 0) or -1)
            reason = body.get("error_description") or body.get("message") or "no token returned"
            raise TokenRefreshFailed(code, str(reason))
        return TokenPair(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=time.time() + float(body.get("expires_in", 90000)),
        )
