"""Writes the schemathesis.toml of one run: the ids of the demo data as dictionaries bound to the
path parameters (so most generated calls reach real rows instead of a 404), the bearer token
from the environment, and every file schemathesis writes kept inside the run dir.

    MP_FUZZ_URL=http://127.0.0.1:PORT MP_FUZZ_TOKEN=mpt_… MP_FUZZ_TEAM=<uuid> \
        python config.py RUN_DIR > RUN_DIR/schemathesis.toml

Uses only the standard library. The token is read from the environment, never written out:
the config names ${MP_FUZZ_TOKEN}, which schemathesis substitutes when it loads the file.
"""

import json
import os
import sys
import urllib.request

URL = os.environ["MP_FUZZ_URL"].rstrip("/")
TOKEN = os.environ["MP_FUZZ_TOKEN"]
TEAM = os.environ["MP_FUZZ_TEAM"]
RUN_DIR = sys.argv[1]

# How often a generated path id is replaced by a real one (the rest stay random: unknown or
# malformed ids must answer a documented 404 too).
REAL_ID_PROBABILITY = 0.8


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.load(res)["data"]


def ids(rows):
    return [r["id"] for r in rows]


def main():
    projects = ids(call("GET", "/v1/projects?limit=100"))
    plans, resources, members, subscriptions = [], [], [], []
    for p in projects:
        plans += ids(call("GET", f"/v1/projects/{p}/plans?limit=100"))
        resources += ids(call("GET", f"/v1/projects/{p}/resources?limit=100"))
        found = ids(call("GET", f"/v1/projects/{p}/members?limit=100"))
        members += found
        for m in found[:10]:
            subscriptions += ids(call("GET", f"/v1/members/{m}")["subscriptions"])
    # One job of the caller's own, so that get_job_status has something to find.
    jobs = [call("POST", f"/v1/plans/{plans[0]}/access-codes", {"quantity": 1})["id"]]
    # Tokens minted to be revoked by revoke_team_token's own run (never the run's main token).
    revocable = [t for t in os.environ.get("MP_FUZZ_REVOCABLE", "").split(",") if t]
    values = {
        "team_id": [TEAM],
        "token_id": revocable,
        "project_id": projects,
        "plan_id": plans,
        "resource_id": resources,
        "member_id": members,
        "subscription_id": subscriptions,
        "job_id": jobs,
    }
    for name, found in values.items():
        if not found:
            sys.exit(f"config.py: the demo data has no {name}")
    out = [
        "# Written by tests/fuzz/config.py for one run; removed with the run dir.",
        "[cache]",
        "enabled = false",
        "",
        "[reports]",
        f"directory = {json.dumps(os.path.join(RUN_DIR, 'report'))}",
        "",
        "[auth.openapi.bearer]",
        'bearer = "${MP_FUZZ_TOKEN}"',
        "",
    ]
    for name, found in values.items():
        out += [f"[dictionaries.{name}]", f"values = {json.dumps(found)}", ""]
    out.append("[parameters]")
    for name in values:
        out.append(f'"path.{name}" = {{ dictionary = "{name}", probability = {REAL_ID_PROBABILITY} }}')
    print("\n".join(out))


main()
