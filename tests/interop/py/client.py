"""MemberPass /mcp interoperability checks with the official MCP Python SDK client.

Environment (set by tests/interop/run.sh):
  MCP_URL              http://127.0.0.1:<port>/mcp
  MP_TOKEN_RW          mcp:full + project:view-any + project:create
  MP_TOKEN_NO_MCP      project:view-any only (no mcp:full)
  MP_TOKEN_NO_CREATE   mcp:full + project:view-any (no project:create)
  MP_TOKEN_REVOKED     a token revoked before use
  CHECK_TIMEOUT_S      per-check timeout (default 20)

Written against mcp 2.3.0, whose API differs from 1.x: the transport is
`mcp.client.streamable_http.streamable_http_client(url, http_client=...)` (headers go on the
httpx2 client), `ClientSession(read, write)` + `initialize()` is the classic handshake, and
`mcp.Client` (mode="auto") first probes `server/discover`, then falls back to `initialize`.

Prints one line per check ("PASS py: …" / "FAIL py: …") and exits 1 if any check failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version as pkg_version
from typing import Any

import httpx2
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        print(f"py: missing environment variable {name}", file=sys.stderr)
        sys.exit(2)
    return value


URL = env("MCP_URL")
TOKEN_RW = env("MP_TOKEN_RW")
TOKEN_NO_MCP = env("MP_TOKEN_NO_MCP")
TOKEN_NO_CREATE = env("MP_TOKEN_NO_CREATE")
TOKEN_REVOKED = env("MP_TOKEN_REVOKED")
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


async def check(name: str, fn: Callable[[Exchanges], Awaitable[str | None]]) -> None:
    log = Exchanges()
    started = time.monotonic()
    ok = False
    try:
        detail = await asyncio.wait_for(fn(log), CHECK_TIMEOUT_S) or ""
        ok = True
    except (asyncio.TimeoutError, TimeoutError):
        detail = f"timed out after {CHECK_TIMEOUT_S:g} s"
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


async def expect_refused(token: str, log: Exchanges) -> BaseException:
    """Connect and list tools with a token that the HTTP layer must refuse; return the error."""
    try:
        async with session_for(token, log) as session:
            tools = await session.list_tools()
    except CheckFailed:
        raise
    except Exception as e:  # noqa: BLE001
        return e
    raise CheckFailed(f"initialize and tools/list both succeeded ({len(tools.tools)} tools listed)")


# ---------------------------------------------------------------------------------------------


async def main() -> int:
    print(f"py: mcp {pkg_version('mcp')} on Python {sys.version.split()[0]} → {URL}", flush=True)

    async def connect_rw(log: Exchanges) -> str:
        async with session_for(TOKEN_RW, log) as session:
            info = session.server_info
            return f"server {getattr(info, 'name', '?')} {getattr(info, 'version', '?')}, protocol {session.protocol_version}"

    await check("connect (initialize) with the read/write token", connect_rw)

    async def list_tools_rw(log: Exchanges) -> str:
        async with session_for(TOKEN_RW, log) as session:
            names = [t.name for t in (await session.list_tools()).tools]
            for want in ("list_projects", "create_project"):
                expect(want in names, f"{want} missing from tools/list: {names}")
            return f"{len(names)} tools"

    await check("tools/list includes list_projects and create_project", list_tools_rw)

    async def list_projects(log: Exchanges) -> str:
        async with session_for(TOKEN_RW, log) as session:
            result = await session.call_tool("list_projects", {})
            expect(not result.is_error, f"isError: true: {truncate(text_of(result) or result.structured_content)}")
            sc = result.structured_content
            expect(isinstance(sc, dict), f"no structuredContent: {truncate(result.model_dump_json(by_alias=True))}")
            expect(isinstance(sc.get("data"), list), f"structuredContent.data is not an array: {truncate(json.dumps(sc))}")
            text = text_of(result)
            try:
                parsed = json.loads(text)
            except ValueError:
                raise CheckFailed(f"text content is not JSON: {truncate(text, 300)}") from None
            expect(parsed == sc, f"text JSON differs from structuredContent: text={truncate(text, 300)}")
            return f"{len(sc['data'])} projects; text content is the same JSON"

    await check("tools/call list_projects {} returns structuredContent.data as an array (text = same JSON)", list_projects)

    async def create_project(log: Exchanges) -> str:
        name = f"Interop PY {secrets.token_hex(4)}"
        async with session_for(TOKEN_RW, log) as session:
            result = await session.call_tool("create_project", {"name": name})
            expect(not result.is_error, f"isError: true: {truncate(text_of(result) or result.structured_content)}")
            data = (result.structured_content or {}).get("data")
            expect(
                isinstance(data, dict) and isinstance(data.get("id"), str),
                f"structuredContent.data.id is not a string: {truncate(result.model_dump_json(by_alias=True))}",
            )
            expect(data.get("name") in (None, name), f"name came back as {data.get('name')!r}, sent {name!r}")
            return f"created {data['id']} ({name})"

    await check("tools/call create_project succeeds and returns structuredContent.data.id", create_project)

    async def auto_mode(log: Exchanges) -> str:
        # mcp.Client's default mode="auto": server/discover probe, then initialize on any MCP error.
        async with http_client(TOKEN_RW, log) as hc:
            async with Client(streamable_http_client(URL, http_client=hc)) as client:
                names = [t.name for t in (await client.list_tools()).tools]
                expect("list_projects" in names, f"list_projects missing from tools/list: {names}")
                result = await client.call_tool("list_projects", {})
                expect(not result.is_error, f"isError: true: {truncate(text_of(result))}")
                methods = []
                for e in log.entries:
                    try:
                        methods.append(f"{json.loads(e['request'])['method']}→{e.get('status')}")
                    except Exception:  # noqa: BLE001
                        methods.append(f"{e['method']}→{e.get('status')}")
                return f"protocol {client.protocol_version}; requests: {', '.join(methods)}"

    await check("mcp.Client (mode=auto: server/discover, then initialize) lists and calls tools", auto_mode)

    async def create_refused(log: Exchanges) -> str:
        async with session_for(TOKEN_NO_CREATE, log) as session:
            result = await session.call_tool("create_project", {"name": f"Interop PY refused {secrets.token_hex(4)}"})
            text = text_of(result)
            structured = json.dumps(result.structured_content)
            expect(result.is_error is True, f"isError is {result.is_error}: {truncate(text or structured)}")
            expect(
                "project:create" in text or "project:create" in structured,
                f"neither text nor structuredContent mentions project:create: text={truncate(text, 400)} "
                f"structured={truncate(structured, 400)}",
            )
            code = ((result.structured_content or {}).get("error") or {}).get("code")
            return f"error code {code or '(none in structuredContent.error.code)'}"

    await check(
        "token without project:create: create_project is a tool result with isError naming project:create",
        create_refused,
    )

    async def list_omits_create(log: Exchanges) -> str:
        async with session_for(TOKEN_NO_CREATE, log) as session:
            names = [t.name for t in (await session.list_tools()).tools]
            expect("list_projects" in names, f"list_projects missing: {names}")
            expect("create_project" not in names, "create_project listed for a token without project:create")
            return f"{len(names)} tools"

    await check("token without project:create: tools/list omits create_project (SPEC §6)", list_omits_create)

    async def revoked(log: Exchanges) -> str:
        e = await expect_refused(TOKEN_REVOKED, log)
        desc = describe_error(e)
        if "AUTHENTICATION_REQUIRED" not in desc:
            wire = log.statuses()
            hint = (
                f" (HTTP status on the wire: {wire}; the Python client only shows the reason when the "
                "error body is a JSON-RPC error, SPEC §6)"
            )
            raise CheckFailed(f"refused, but the client error does not show AUTHENTICATION_REQUIRED: {desc}{hint}")
        expect(401 in log.statuses(), f"no HTTP 401 on the wire: {log.statuses()}")
        www = [e.get("www_authenticate") for e in log.entries if e.get("status") == 401]
        expect(
            all(w and w.lower().startswith("bearer") for w in www),
            f'a 401 without "WWW-Authenticate: Bearer" (SPEC §6): {www}',
        )
        return desc

    await check("revoked token: refused with HTTP 401 / AUTHENTICATION_REQUIRED", revoked)

    async def revoked_auto(log: Exchanges) -> str:
        # What users of the high-level mcp.Client see: the discover probe and the initialize
        # fallback are both refused; the error raised must still name the reason.
        try:
            async with http_client(TOKEN_REVOKED, log) as hc:
                async with Client(streamable_http_client(URL, http_client=hc)) as client:
                    tools = await client.list_tools()
        except CheckFailed:
            raise
        except Exception as e:  # noqa: BLE001
            desc = describe_error(e)
            expect("AUTHENTICATION_REQUIRED" in desc, f"refused, but the error does not show AUTHENTICATION_REQUIRED: {desc}")
            return f"statuses {log.statuses()}; {desc[:120]}…"
        raise CheckFailed(f"connect and tools/list both succeeded ({len(tools.tools)} tools listed)")

    await check("revoked token with mcp.Client (mode=auto): error shows AUTHENTICATION_REQUIRED", revoked_auto)

    async def no_mcp(log: Exchanges) -> str:
        e = await expect_refused(TOKEN_NO_MCP, log)
        desc = describe_error(e)
        if "TOKEN_MISSING_ABILITY" not in desc and "mcp:full" not in desc:
            wire = log.statuses()
            hint = (
                f" (HTTP status on the wire: {wire}; the Python client only shows the reason when the "
                "error body is a JSON-RPC error, SPEC §6)"
            )
            raise CheckFailed(f"refused, but the client error shows neither TOKEN_MISSING_ABILITY nor mcp:full: {desc}{hint}")
        expect(403 in log.statuses(), f"no HTTP 403 on the wire: {log.statuses()}")
        return desc

    await check("token without mcp:full: refused with HTTP 403 / TOKEN_MISSING_ABILITY mcp:full", no_mcp)

    failed = [n for n, ok in RESULTS if not ok]
    print(f"py: {len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
