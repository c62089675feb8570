"""MemberPass /mcp interoperability checks with the official MCP Python SDK client.

Environment (set by tests/interop/run.sh):
  MCP_URL              http://127.0.0.1:<port>/mcp
  MP_TOKEN_RW          mcp:full + project:view-any + project:create
  MP_TOKEN_NO_MCP      project:view-any only (no mcp:full)
  MP_TOKEN_NO_CREATE   mcp:full + project:view-any (no project:create)
  MP_TOKEN_REVOKED     a token revoked before use
  MP_TOKEN_APPROVAL    mcp:full + project:view-any + project-user:view-any + project-user:view +
                       project-user:update, for the approval checks (approval.py); empty: skipped
  MP_NODE              Node 22, to run ../oauth/person.mjs (MP_PERSON_EMAIL / MP_PERSON_PASSWORD)
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
import secrets
import sys
from importlib.metadata import version as pkg_version

from approval import approval_checks
from harness import (
    RESULTS,
    URL,
    CheckFailed,
    Exchanges,
    check,
    describe_error,
    env,
    expect,
    http_client,
    session_for,
    text_of,
    truncate,
)
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

TOKEN_RW = env("MP_TOKEN_RW")
TOKEN_NO_MCP = env("MP_TOKEN_NO_MCP")
TOKEN_NO_CREATE = env("MP_TOKEN_NO_CREATE")
TOKEN_REVOKED = env("MP_TOKEN_REVOKED")


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

    await approval_checks(os.environ.get("MP_TOKEN_APPROVAL"))

    failed = [n for n, ok in RESULTS if not ok]
    print(f"py: {len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
