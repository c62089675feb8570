"""Approvals (issue 20) with the Python SDK: a held destructive call is a tool result (isError,
APPROVAL_REQUIRED, the page where a person decides), never a protocol error; a person approves on
the dashboard (headless Chromium, ../oauth/person.mjs run with MP_NODE); the same call then runs
once, and repeating it answers APPROVAL_INVALID (reason used).

A session per check: the SDK's transport cannot outlive the task that opened it.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import CHECK_TIMEOUT_S, URL, CheckFailed, Exchanges, check, expect, session_for, text_of, truncate

PERSON_JS = Path(__file__).resolve().parent.parent / "oauth" / "person.mjs"
# Chromium starts, signs in, opens the page, clicks: more than one tool call takes.
PERSON_TIMEOUT_S = max(CHECK_TIMEOUT_S, 90.0)
ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(URL))


def error_of(result: Any) -> dict[str, Any]:
    return (result.structured_content or {}).get("error") or {}


def shown(result: Any) -> str:
    return truncate(text_of(result) or json.dumps(result.structured_content), 600)


def expect_held(result: Any) -> tuple[str, str]:
    """A held call's answer, checked to the letter of issue 20; returns its request's id and URL."""
    e = error_of(result)
    expect(result.is_error is True, f"isError is {result.is_error}: {shown(result)}")
    expect(e.get("code") == "APPROVAL_REQUIRED", f"error code {e.get('code')}: {shown(result)}")
    approval_id = e.get("approval_id")
    expect(isinstance(approval_id, str) and approval_id, f"no approval_id: {shown(result)}")
    page = f"{ORIGIN}/settings/approvals/{approval_id}"
    expect(e.get("approval_url") == page, f"approval_url {e.get('approval_url')}, expected {page}")
    sentence = f"A person must approve this on {page}; then call the same tool again with the same arguments."
    expect(e.get("message") == sentence, f"message {e.get('message')!r}, expected {sentence!r}")
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    expect(len(texts) > 1 and texts[1] == sentence, f"the second text block is not the sentence: {truncate(texts, 600)}")
    return approval_id, page


async def person_approves(url: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        os.environ.get("MP_NODE", "node"), str(PERSON_JS), "approve", "--url", url, "--expect", "kick_member",
        stdout=asyncio.subprocess.PIPE,
    )
    out = (await proc.communicate())[0].decode("utf-8", "replace")
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "error": f"person.mjs exited {proc.returncode}: {out[:400]!r}"}


async def approval_checks(token: str | None) -> None:
    """The scenario with `token` (mcp:full, project:view-any, project-user:view-any, -:view, -:update)."""
    if not token:
        print("SKIP py: approvals (no MP_TOKEN_APPROVAL: run.sh found no Chromium for the person)", flush=True)
        return
    state: dict[str, Any] = {}

    def need(key: str) -> Any:
        if key not in state:
            raise CheckFailed(f"no {key} (an earlier check failed)")
        return state[key]

    async def find_member(log: Exchanges) -> str:
        async with session_for(token, log) as session:
            projects = await session.call_tool("list_projects", {})
            expect(not projects.is_error, f"list_projects: {shown(projects)}")
            for p in projects.structured_content["data"]:
                r = await session.call_tool("list_subscribers", {"project_id": p["id"], "status": "customer"})
                expect(not r.is_error, f"list_subscribers: {shown(r)}")
                if r.structured_content["data"]:
                    m = r.structured_content["data"][0]
                    state["args"] = {"member_id": m["id"], "reason": "interop py: approvals"}
                    return f"{m['display_name']} ({m['id']}) of {p['name']}"
        raise CheckFailed("no customer in any demo project")

    await check("approvals: list_subscribers finds a customer of a demo project", find_member)

    async def held(log: Exchanges) -> str:
        args = need("args")
        async with session_for(token, log) as session:
            names = [t.name for t in (await session.list_tools()).tools]
            expect("kick_member" in names, f"kick_member missing from tools/list: {names}")
            state["held"] = expect_held(await session.call_tool("kick_member", args))
            m = await session.call_tool("get_member", {"member_id": args["member_id"]})
            status = ((m.structured_content or {}).get("data") or {}).get("status")
            expect(status == "customer", f"the held call changed the member: {shown(m)}")
            return state["held"][1]

    await check(
        "approvals: after tools/list, kick_member is held — a tool result with isError, APPROVAL_REQUIRED and the URL",
        held,
    )

    async def approve(log: Exchanges) -> str:
        approval_id, url = need("held")
        run = await person_approves(url)
        expect(run.get("ok"), f"the person could not approve: {truncate(json.dumps(run), 900)}")
        expect(run.get("status") == "granted" and run.get("approval_id") == approval_id, f"the person saw {run}")
        return json.dumps(run)

    await check("approvals: a person approves on the dashboard (Chromium: #approve → granted)", approve, PERSON_TIMEOUT_S)

    async def runs(log: Exchanges) -> str:
        need("held")
        args = need("args")
        async with session_for(token, log) as session:
            r = await session.call_tool("kick_member", args)
            expect(not r.is_error, f"isError is {r.is_error}: {shown(r)}")
            m = (r.structured_content or {}).get("data") or {}
            expect(m.get("id") == args["member_id"] and m.get("status") == "churned", f"the member is not churned: {shown(r)}")
            return f"{m['id']} {m['status']}"

    await check("approvals: the same call again runs (isError false, member churned)", runs)

    async def used(log: Exchanges) -> str:
        approval_id, _ = need("held")
        async with session_for(token, log) as session:
            r = await session.call_tool("kick_member", need("args"))
            e = error_of(r)
            expect(r.is_error is True, f"isError is {r.is_error}: {shown(r)}")
            expect(
                e.get("code") == "APPROVAL_INVALID" and e.get("reason") == "used",
                f"error {e.get('code')} reason {e.get('reason')}: {shown(r)}",
            )
            expect(e.get("approval_id") == approval_id, f"approval_id {e.get('approval_id')}, expected {approval_id}")
            return str(e.get("message"))

    await check("approvals: a third call answers APPROVAL_INVALID, reason used", used)
