"""OAuth end to end with the official MCP Python SDK (mcp 2.3.0, pinned in ../py): the SDK's
`OAuthClientProvider` as the httpx2 `auth`, its `redirect_handler` handing the authorization URL
to the Chromium person (person.mjs), its `callback_handler` waiting on our loopback callback
server. Then: list tools, call a read tool, be refused a write outside the grant (HTTP 403
insufficient_scope; the SDK steps up, the person clicks Deny), refresh once the access token has
expired, revoke in Connected apps (→ 401), and reconnect (the SDK re-authorizes on the 401).

Environment (set by tests/interop/oauth.sh): MCP_URL, MP_BASE, ACCESS_TTL_S, MP_NODE (Node 22),
MP_PERSON_EMAIL / MP_PERSON_PASSWORD (read by person.mjs), CHECK_TIMEOUT_S.
Prints "PASS py-oauth: …" / "FAIL py-oauth: …" per check; exits 1 if any failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp import ClientSession
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, OAuthFlowError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

TAG = "py-oauth"
HERE = Path(__file__).resolve().parent


def env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        print(f"missing environment variable {name}", file=sys.stderr)
        sys.exit(2)
    return v


URL = env("MCP_URL")
BASE = env("MP_BASE")
TTL_S = int(env("ACCESS_TTL_S"))
NODE = env("MP_NODE")
CHECK_TIMEOUT_S = float(os.environ.get("CHECK_TIMEOUT_S", "60"))
CLIENT_NAME = f"MemberPass interop Python SDK {os.getpid()}"
SECRET_RE = re.compile(r"(mpr?t_(?:live|test)_[0-9A-Za-z]{12})_[0-9A-Za-z]{38}")


def mask(s: object) -> str:
    return re.sub(r"((?:code|code_verifier|refresh_token)=)[^&\s\"]+", r"\1…", SECRET_RE.sub(r"\1_…", str(s)))


class CheckFailed(Exception):
    pass


def expect(cond: object, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


class Exchanges:
    """Every request the httpx2 client makes (the OAuth flow's included), with its answer."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    async def on_request(self, request: httpx2.Request) -> None:
        try:
            body = request.content.decode("utf-8", "replace") if request.content else None
        except Exception:
            body = "<stream>"
        self.entries.append({"method": request.method, "url": str(request.url), "request": body})

    async def on_response(self, response: httpx2.Response) -> None:
        for e in reversed(self.entries):
            if e["url"] == str(response.request.url) and e["method"] == response.request.method and "status" not in e:
                break
        else:
            e = {"method": response.request.method, "url": str(response.request.url), "request": None}
            self.entries.append(e)
        e["status"] = response.status_code
        e["www_authenticate"] = response.headers.get("www-authenticate")
        if response.status_code >= 400 or (response.headers.get("content-type") or "").startswith("application/json"):
            try:
                e["response"] = (await response.aread()).decode("utf-8", "replace")[:600]
            except Exception as err:  # diagnostics only
                e["response"] = f"<unreadable {err}>"

    def since(self, mark: int) -> list[dict[str, Any]]:
        return self.entries[mark:]

    def format(self, mark: int) -> str:
        out = []
        for e in self.entries[mark:][-14:]:
            www = f" [{e['www_authenticate']}]" if e.get("www_authenticate") else ""
            req = f" req={(e.get('request') or '')[:200]}" if e.get("request") else ""
            res = f" res={e.get('response')[:200]}" if e.get("response") else ""
            out.append(f"    {e['method']} {e['url']} → {e.get('status')}{www}{req}{res}")
        return mask("\n".join(out))


class Storage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None
        self.history: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.history.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Callback:
    """The loopback redirect target (asyncio streams, HTTP/1.0 answer)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/callback"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode("latin-1")
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            target = line.split(" ")[1] if len(line.split(" ")) > 1 else "/"
            if urlsplit(target).path == "/callback":
                await self.queue.put(f"http://127.0.0.1:{self.port}{target}")
                body, status = b"<p>Done; you can close this page.</p>", "200 OK"
            else:
                body, status = b"", "404 Not Found"
            writer.write(f"HTTP/1.0 {status}\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        finally:
            writer.close()


class Person:
    """Runs person.mjs; `deny` makes it click Deny instead of Allow."""

    def __init__(self) -> None:
        self.deny = False
        self.tick: list[str] = []  # abilities the person ticks on the consent page
        self.urls: list[str] = []
        self.runs: list[asyncio.Task[dict[str, Any]]] = []

    async def _run(self, *args: str) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(NODE, str(HERE / "person.mjs"), *args, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        try:
            return json.loads(out.decode().strip().splitlines()[-1])
        except Exception:
            return {"ok": False, "error": f"person.mjs exited {proc.returncode}: {out[:400]!r}"}

    def authorize(self, url: str) -> None:
        self.urls.append(url)
        extra = ["--deny"] if self.deny else [a for t in self.tick for a in ("--ability", t)]
        self.runs.append(asyncio.create_task(self._run("authorize", "--url", url, *extra)))

    async def revoke(self) -> dict[str, Any]:
        return await self._run("revoke", "--base", BASE, "--client-name", CLIENT_NAME)


RESULTS: list[bool] = []


async def check(name: str, log: Exchanges, fn) -> bool:
    mark = len(log.entries)
    started = time.monotonic()
    try:
        detail = await asyncio.wait_for(fn(), CHECK_TIMEOUT_S) or ""
        ok = True
    except (asyncio.TimeoutError, TimeoutError):
        ok, detail = False, f"timed out after {CHECK_TIMEOUT_S:g} s"
    except BaseException as e:  # noqa: BLE001 - reported, not raised
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        leaves = list(e.exceptions) if isinstance(e, BaseExceptionGroup) else [e]
        ok, detail = False, "; ".join(f"{type(x).__name__}: {x}" for x in leaves)
    ms = int((time.monotonic() - started) * 1000)
    print(f"{'PASS' if ok else 'FAIL'} {TAG}: {name} ({ms} ms){' — ' + mask(detail) if detail else ''}", flush=True)
    if not ok:
        print(log.format(mark), flush=True)
    RESULTS.append(ok)
    return ok


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in (result.content or []) if getattr(c, "type", None) == "text")


async def main() -> int:
    callback = Callback()
    await callback.start()
    person = Person()
    storage = Storage()
    log = Exchanges()
    outcomes: list[str] = []  # what each callback brought: "code" or the error

    async def redirect_handler(url: str) -> None:
        person.authorize(url)

    async def callback_handler() -> AuthorizationCodeResult:
        getting = asyncio.ensure_future(callback.queue.get())
        done, _ = await asyncio.wait({getting, person.runs[-1]}, timeout=CHECK_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        if getting not in done:
            finished = person.runs[-1].done() and person.runs[-1].result().get("ok")
            if not finished:
                getting.cancel()
                run = person.runs[-1].result() if person.runs[-1].done() else {"error": "timed out"}
                raise CheckFailed(f"no callback: the person did not get there: {run}")
            landed = await asyncio.wait_for(getting, 10)
        else:
            landed = getting.result()
        run = await person.runs[-1]
        q = parse_qs(urlsplit(landed).query)
        if "error" in q:
            outcomes.append(q["error"][0])
            raise OAuthFlowError(f"authorization answered error={q['error'][0]} (iss={q.get('iss')})")
        expect(run.get("ok"), f"the person could not consent: {run}")
        expect(len(q.get("code", [])) == 1 and len(q.get("state", [])) == 1, f"one code and one state: {landed}")
        outcomes.append("code")
        return AuthorizationCodeResult(code=q["code"][0], state=q["state"][0], iss=(q.get("iss") or [None])[0])

    provider = OAuthClientProvider(
        server_url=URL,
        client_metadata=OAuthClientMetadata(
            client_name=CLIENT_NAME,
            redirect_uris=[callback.url],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    hc = httpx2.AsyncClient(
        auth=provider,
        timeout=httpx2.Timeout(30.0, read=120.0),
        event_hooks={"request": [log.on_request], "response": [log.on_response]},
    )

    async def call(tool: str, args: dict[str, Any] | None = None):
        async with streamable_http_client(URL, http_client=hc, terminate_on_close=False) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                if tool == "tools/list":
                    return await session.list_tools()
                return await session.call_tool(tool, args or {})

    async def connect() -> str:
        tools = await call("tools/list")
        expect(any(e["url"] == f"{BASE}/register" and e.get("status") == 201 for e in log.entries), "no 201 from POST /register")
        expect(person.runs, "the SDK never asked the person")
        run = await person.runs[0]
        expect(run.get("ok"), f"the person could not consent: {run}")
        consent = run.get("consent") or {}
        expect(CLIENT_NAME in consent.get("text", ""), "the consent page does not name the client")
        expect("project:view-any" in consent.get("checked", []), f"read preset not checked: {consent.get('checked')}")
        expect("project:create" not in consent.get("checked", []), "a write was pre-checked")
        auth = parse_qs(urlsplit(person.urls[0]).query)
        expect(auth.get("code_challenge_method") == ["S256"] and auth.get("resource"), f"PKCE S256 and resource: {auth.keys()}")
        t = storage.tokens
        expect(t and t.access_token.startswith("mpt_test_") and (t.refresh_token or "").startswith("mprt_test_"), "not an mpt_/mprt_ pair")
        names = [x.name for x in tools.tools]
        expect("list_projects" in names, f"no list_projects in {names}")
        expect("create_project" not in names, "create_project listed although the grant lacks project:create")
        return f"client {storage.client.client_id}, scope {t.scope!r}, {len(names)} tools"

    if not await check("connect: 401 → discovery → registration → Chromium consent → token; list tools (filtered)", log, connect):
        await hc.aclose()
        return 1

    async def read() -> str:
        r = await call("list_projects")
        expect(not r.is_error, f"list_projects failed: {text_of(r)[:300]}")
        return "ok"

    await check("call a read tool (list_projects)", log, read)

    write_name = f"interop-oauth-py-{os.getpid()}"

    async def write_refused() -> str:
        mark = len(log.entries)
        before = len(person.urls)
        person.deny = True
        try:
            try:
                r = await call("create_project", {"name": write_name})
                raise CheckFailed(f"the write was answered with a result: {text_of(r)[:200]}")
            except CheckFailed:
                raise
            except BaseException:  # noqa: BLE001 - the refusal, checked below
                pass
        finally:
            person.deny = False
        refused = [e for e in log.since(mark) if e.get("status") == 403 and "insufficient_scope" in (e.get("www_authenticate") or "")]
        expect(refused, "no 403 with error=\"insufficient_scope\"")
        expect("project:create" in refused[0]["www_authenticate"], f"the challenge lacks project:create: {refused[0]['www_authenticate']}")
        expect(len(person.urls) > before, "the SDK did not step up")
        expect("project:create" in parse_qs(urlsplit(person.urls[-1]).query).get("scope", [""])[0], "the step-up did not ask for project:create")
        run = await person.runs[-1]
        expect(run.get("consent"), f"the person never saw the step-up consent: {run}")
        expect(outcomes and outcomes[-1] == "access_denied", f"Deny did not answer access_denied: {outcomes}")
        listed = text_of(await call("list_projects"))
        expect(write_name not in listed, "the project was created anyway")
        return f"challenge {refused[0]['www_authenticate']}; the person denied the step-up"

    await check("a write outside the grant: 403 insufficient_scope, step-up denied in Chromium", log, write_refused)

    async def step_up_granted() -> str:
        mark = len(log.entries)
        before = len(person.urls)
        person.tick = ["project:create"]
        try:
            r = await call("create_project", {"name": write_name})
        finally:
            person.tick = []
        expect(not r.is_error, f"the write failed after the step-up: {text_of(r)[:300]}")
        expect(len(person.urls) == before + 1, f"expected one step-up, the person was asked {len(person.urls) - before}×")
        run = await person.runs[-1]
        expect(run.get("consent", {}).get("ticked") == ["project:create"], f"the person did not tick project:create: {run}")
        expect(any(e.get("status") == 403 for e in log.since(mark)), "no 403 before the step-up")
        expect("project:create" in (storage.tokens.scope or "").split(), f"the new token lacks project:create: {storage.tokens.scope}")
        expect(write_name in text_of(await call("list_projects")), "the project is not listed")
        return f"scope now includes project:create; {write_name} created"

    await check("step-up granted: the person ticks project:create in Chromium, the write goes through", log, step_up_granted)

    async def refresh() -> str:
        old = storage.tokens
        await asyncio.sleep(TTL_S + 1)
        mark = len(log.entries)
        r = await call("list_projects")
        expect(not r.is_error, "list_projects failed after expiry")
        refreshes = [e for e in log.since(mark) if e["url"] == f"{BASE}/token" and "grant_type=refresh_token" in (e.get("request") or "")]
        expect(refreshes and refreshes[0].get("status") == 200, f"no successful refresh_token grant: {refreshes}")
        expect(storage.tokens.access_token != old.access_token, "same access token")
        expect(storage.tokens.refresh_token != old.refresh_token, "the refresh token did not rotate")
        return "new access token, rotated refresh token"

    await check(f"refresh after the access token expires ({TTL_S} s)", log, refresh)

    async def revoke() -> str:
        run = await person.revoke()
        expect(run.get("ok"), f"revoke failed: {run}")
        async with httpx2.AsyncClient() as raw:
            r = await raw.post(
                URL,
                headers={
                    "authorization": f"Bearer {storage.tokens.access_token}",
                    "accept": "application/json, text/event-stream",
                    "mcp-protocol-version": "2025-11-25",
                },
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            )
        expect(r.status_code == 401, f"the revoked grant's token got {r.status_code}")
        expect("invalid_token" in r.headers.get("www-authenticate", ""), "no invalid_token challenge")
        return f"grant {run.get('revoked')}"

    await check("revoke in Connected apps (Chromium) → 401", log, revoke)

    async def reconnect() -> str:
        before = len(person.urls)
        old = storage.tokens
        r = await call("list_projects")
        expect(not r.is_error, "list_projects failed after reconnecting")
        expect(len(person.urls) > before, "the SDK did not authorize again")
        expect(storage.tokens.access_token != old.access_token, "no new token")
        return "the SDK re-authorized on the 401; the call went through"

    await check("reconnect after revocation", log, reconnect)

    await hc.aclose()
    callback.server.close()
    passed = sum(RESULTS)
    print(f"{TAG}: {passed} passed, {len(RESULTS) - passed} failed", flush=True)
    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
