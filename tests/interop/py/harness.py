"""What the Python SDK checks share: the environment, an HTTP exchange recorder whose evidence is
printed under a failing check, a session per token, and the checks themselves."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        print(f"py: missing environment variable {name}", file=sys.stderr)
        sys.exit(2)
    return value


URL = env("MCP_URL")
CHECK_TIMEOUT_S = float(os.environ.get("CHECK_TIMEOUT_S", "20"))

TOKEN_RE = re.compile(r"mpt_(live|test)_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")


def mask(s: object) -> str:
    return TOKEN_RE.sub(lambda m: f"mpt_{m.group(1)}_…[token]", str(s))


def truncate(s: object, n: int = 1500) -> str:
    s = str(s)
    return s if len(s) <= n else f"{s[:n]}… ({len(s)} chars)"


class CheckFailed(Exception):
    pass


def expect(cond: object, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


# ---------------------------------------------------------------------------------------------
# HTTP exchange recorder (httpx2 event hooks): every request the transport makes, with status and
# (for JSON and error responses) a body excerpt. Printed under a failing check as evidence.


class Exchanges:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    async def on_request(self, request: httpx2.Request) -> None:
        body = None
        try:
            body = request.content.decode("utf-8", "replace") if request.content else None
        except Exception:  # streaming body; not expected for MCP POSTs
            body = "<stream>"
        self.entries.append({"method": request.method, "url": str(request.url), "request": body})

    async def on_response(self, response: httpx2.Response) -> None:
        entry = {"method": response.request.method, "url": str(response.request.url), "request": None}
        for e in reversed(self.entries):
            if e["url"] == entry["url"] and e["method"] == entry["method"] and "status" not in e:
                entry = e
                break
        else:
            self.entries.append(entry)
        entry["status"] = response.status_code
        entry["content_type"] = response.headers.get("content-type")
        entry["www_authenticate"] = response.headers.get("www-authenticate")
        entry["session_id"] = response.headers.get("mcp-session-id")
        ct = (entry["content_type"] or "").lower()
        if response.status_code >= 400 or ct.startswith("application/json"):
            try:
                # Cached on the response, so the transport still reads the same bytes.
                entry["response"] = (await response.aread()).decode("utf-8", "replace")
            except Exception as e:  # pragma: no cover - diagnostics only
                entry["response"] = f"<unreadable: {e}>"

    def statuses(self) -> list[int]:
        return [e["status"] for e in self.entries if "status" in e]

    def format(self) -> str:
        lines: list[str] = []
        for e in self.entries:
            req = f" {truncate(e['request'], 600)}" if e.get("request") else ""
            lines.append(f"    > {e['method']} {e['url']}{req}")
            if "status" in e:
                extra = ""
                if e.get("www_authenticate"):
                    extra += f" www-authenticate: {e['www_authenticate']}"
                if e.get("session_id"):
                    extra += f" mcp-session-id: {e['session_id']}"
                lines.append(f"    < {e['status']} {e.get('content_type') or ''}{extra}")
                if e.get("response") is not None:
                    lines.append(f"    < {truncate(e['response'])}")
            else:
                lines.append("    < (no response)")
        return mask("\n".join(lines))


def http_client(token: str, log: Exchanges) -> httpx2.AsyncClient:
    # Same timeouts as mcp.shared._httpx_utils.create_mcp_http_client, plus the recording hooks.
    return httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(30.0, read=300.0),
        event_hooks={"request": [log.on_request], "response": [log.on_response]},
    )


@asynccontextmanager
async def session_for(token: str, log: Exchanges) -> AsyncIterator[ClientSession]:
    """ClientSession over Streamable HTTP, after the classic initialize handshake."""
    async with http_client(token, log) as hc:
        async with streamable_http_client(URL, http_client=hc) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def leaf_errors(e: BaseException) -> list[BaseException]:
    if isinstance(e, BaseExceptionGroup):
        return [leaf for sub in e.exceptions for leaf in leaf_errors(sub)]
    return [e]


def describe_error(e: BaseException) -> str:
    parts = []
    for leaf in leaf_errors(e):
        if isinstance(leaf, MCPError):
            data = f" data={json.dumps(leaf.data)}" if leaf.data is not None else ""
            parts.append(f"MCPError code={leaf.code} message={leaf.message!r}{data}")
        else:
            parts.append(f"{type(leaf).__name__}: {leaf}")
    return mask(truncate("; ".join(parts), 1200))


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in (result.content or []) if getattr(c, "type", None) == "text")


RESULTS: list[tuple[str, bool]] = []


async def check(
    name: str, fn: Callable[[Exchanges], Awaitable[str | None]], timeout_s: float = CHECK_TIMEOUT_S
) -> bool:
    log = Exchanges()
    started = time.monotonic()
    ok = False
    try:
        detail = await asyncio.wait_for(fn(log), timeout_s) or ""
        ok = True
    except (asyncio.TimeoutError, TimeoutError):
        detail = f"timed out after {timeout_s:g} s"
    except BaseException as e:  # noqa: BLE001 - every failure is reported, not raised
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        failed = [leaf for leaf in leaf_errors(e) if isinstance(leaf, CheckFailed)]
        detail = mask(str(failed[0])) if failed else f"unexpected error: {describe_error(e)}"
    ms = int((time.monotonic() - started) * 1000)
    print(f"{'PASS' if ok else 'FAIL'} py: {name} ({ms} ms){' — ' + detail if detail else ''}", flush=True)
    if not ok and log.entries:
        print(f"  HTTP exchanges:\n{log.format()}", flush=True)
    RESULTS.append((name, ok))
    return ok

