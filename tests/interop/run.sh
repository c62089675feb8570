#!/usr/bin/env bash
# Interoperability test of MemberPass /mcp with the official MCP client SDKs (TypeScript, Python).
#
#   tests/interop/run.sh          # from the repo root (or anywhere; it finds the repo itself)
#
# Needs: the Rust toolchain, Node (any recent) + npm, Python 3.11, and access to the npm and PyPI
# registries on the first run; chromium + chromedriver (apt: chromium chromium-driver) for the
# approval checks, where the person approves in a headless Chromium (oauth/person.mjs) — without
# them those checks are skipped, unless MEMBERPASS_BROWSER_TESTS=required (.ci/run), which fails. Installs, inside tests/interop/ (git-ignored):
#   .node/   Node 22 from the npm package `node` (the TS client runs on it)
#   ts/node_modules/   @modelcontextprotocol/sdk as pinned in ts/package-lock.json (npm ci)
#   .venv/   Python venv with `mcp` from py/requirements.txt (constrained by py/constraints.txt)
# Re-runs skip every install whose inputs did not change.
#
# Then: builds target/debug/memberpass, starts `serve --demo` on a free loopback port with a fresh
# data dir, mints the tokens below with the CLI against the same data dir, runs ts/client.mjs and
# py/client.py (each with its approval checks: ts/approval.mjs, py/approval.py), and exits
# non-zero if any check failed. The server is always stopped on exit, and no Chromium may remain.
#
# Environment knobs: INTEROP_SKIP_BUILD=1 (use the existing target/debug/memberpass),
# INTEROP_KEEP=1 (keep the run dir even on success), CHECK_TIMEOUT_S (per check, default 20).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

CHECK_TIMEOUT_S="${CHECK_TIMEOUT_S:-20}"
LOG_NAME=interop
# shellcheck source=lib.sh
source "$HERE/lib.sh"

# ---------------------------------------------------------------------------------------------
# 1. Toolchains and SDKs (idempotent; a stamp file records what each install was made from)

# shellcheck source=node.sh
source "$HERE/node.sh"

npm_install "$HERE/ts" "the TypeScript SDK"

python_venv

# ---------------------------------------------------------------------------------------------
# 2. The server

memberpass_bin

# Only our data dir and defaults: an inherited database URL would point the server elsewhere.
unset MEMBERPASS_DATABASE_URL MEMBERPASS_DATA_DIR MEMBERPASS_ENV

mkdir -p "$HERE/.runs"
RUN_DIR="$(mktemp -d "$HERE/.runs/run-$(date +%Y%m%d-%H%M%S)-XXXX")"
DATA="$RUN_DIR/data"
SERVER_PID=""
STATUS=1

cleanup() {
    local rc=$?
    stop_pid "$SERVER_PID"
    if [[ $rc -eq 0 && $STATUS -eq 0 && "${INTEROP_KEEP:-}" != 1 ]]; then
        rm -rf "$RUN_DIR"
    else
        log "run dir kept: ${RUN_DIR#"$ROOT"/} (server.log, data/)"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"

log "starting memberpass serve --demo on $BASE (data: ${DATA#"$ROOT"/})"
# --json: the demo's team id and token come as one JSON object on stdout.
# --rate-limit-auth-failures: the two clients' refused tokens stay well under 20/min; the default
# (5/min per IP) is close enough that a retrying client could turn a 401 into a 429.
MEMBERPASS_LOG="${MEMBERPASS_LOG:-info}" \
    "$BIN" --data-dir "$DATA" --json serve --listen "127.0.0.1:$PORT" --demo \
    --rate-limit-auth-failures 20 \
    >"$RUN_DIR/serve.json" 2>"$RUN_DIR/server.log" &
SERVER_PID=$!

healthy() { # no curl on a bare machine: ask with Python
    "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()' \
        "$BASE/healthz" 2>/dev/null
}
for _ in $(seq 300); do
    healthy && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$RUN_DIR/server.log" >&2; die "server exited"; }
    sleep 0.1
done
healthy || die "server did not answer GET /healthz within 30 s"
for _ in $(seq 100); do [[ -s "$RUN_DIR/serve.json" ]] && break; sleep 0.1; done

json_get() { # json_get FILE KEY  (top-level string field)
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
TEAM_ID="$(json_get "$RUN_DIR/serve.json" team_id)" || die "no team_id in the demo output: $(cat "$RUN_DIR/serve.json")"
DEMO_USER="$(json_get "$RUN_DIR/serve.json" email)"

mp() { "$BIN" --data-dir "$DATA" --json "$@"; }
mint() { # mint NAME ABILITY... → prints the token; the CLI's JSON is kept as NAME.json
    local name="$1"; shift
    local args=()
    for a in "$@"; do args+=(--ability "$a"); done
    mp token mint --team "$TEAM_ID" --user "$DEMO_USER" --name "interop $name" "${args[@]}" \
        >"$RUN_DIR/$name.json" || die "token mint $name failed"
    json_get "$RUN_DIR/$name.json" token
}

log "minting tokens for team $TEAM_ID"
MP_TOKEN_RW="$(mint rw mcp:full project:view-any project:create)"
MP_TOKEN_NO_MCP="$(mint no-mcp project:view-any)"
# The token `serve --demo` prints, as a new user pastes it: `mcp:full` and reads, no `project:create`.
MP_TOKEN_NO_CREATE="$(json_get "$RUN_DIR/serve.json" token)"
[[ "$MP_TOKEN_NO_CREATE" == mpt_test_* ]] || die "no demo token in the serve --demo output"
MP_TOKEN_REVOKED="$(mint revoked mcp:full project:view-any)"
REVOKED_ID="$(json_get "$RUN_DIR/revoked.json" id)"
mp token revoke "$REVOKED_ID" --reason "interop test" >"$RUN_DIR/revoke.json" || die "token revoke failed"
# Approvals (issue 20): kick_member is held for a person, who approves in a headless Chromium
# (oauth/person.mjs, as the demo owner); a token per client, so neither meets the other's request.
APPROVAL=(mcp:full project:view-any project-user:view-any project-user:view project-user:update)
MP_TOKEN_APPROVAL_TS="" MP_TOKEN_APPROVAL_PY=""
if [[ -x "${CHROMEDRIVER:-$(command -v chromedriver || true)}" ]] && { command -v chromium >/dev/null || [[ -n "${CHROMIUM:-}" ]]; }; then
    MP_TOKEN_APPROVAL_TS="$(mint approval-ts "${APPROVAL[@]}")"
    MP_TOKEN_APPROVAL_PY="$(mint approval-py "${APPROVAL[@]}")"
    MP_PERSON_EMAIL="$DEMO_USER"
    MP_PERSON_PASSWORD="$(json_get "$RUN_DIR/serve.json" password)" || die "no password in the demo output"
    export MP_PERSON_EMAIL MP_PERSON_PASSWORD MP_NODE="$NODE"
elif [[ "${MEMBERPASS_BROWSER_TESTS:-}" == required ]]; then
    die "no chromium + chromedriver (apt-get install chromium chromium-driver): the approval checks need them"
else
    log "no chromium + chromedriver: the approval checks are skipped"
fi
# The secrets stay in the run dir only while it exists; it is removed after a passing run.

export MCP_URL="$BASE/mcp" MP_TOKEN_RW MP_TOKEN_NO_MCP MP_TOKEN_NO_CREATE MP_TOKEN_REVOKED CHECK_TIMEOUT_S
export CHECK_TIMEOUT_MS=$((CHECK_TIMEOUT_S * 1000))

# ---------------------------------------------------------------------------------------------
# 3. The clients (each also under a hard timeout, in case a client hangs outside its checks)

FAILED=()
log "TypeScript client"
if ! MP_TOKEN_APPROVAL="$MP_TOKEN_APPROVAL_TS" timeout 300 "$NODE" "$HERE/ts/client.mjs"; then FAILED+=(typescript); fi
log "Python client"
if ! MP_TOKEN_APPROVAL="$MP_TOKEN_APPROVAL_PY" timeout 300 "$PY" "$HERE/py/client.py"; then FAILED+=(python); fi
# Nothing of the person may be left behind (person.mjs ends its chromedriver process group).
if pgrep -f "memberpass-person-" >/dev/null 2>&1; then
    FAILED+=("leftover Chromium processes: $(pgrep -f "memberpass-person-" | tr '\n' ' ')")
fi

if ((${#FAILED[@]})); then
    log "server log (last 40 lines):"
    tail -n 40 "$RUN_DIR/server.log" | sed -E 's/\x1b\[[0-9;]*m//g' >&2
    log "FAILED: ${FAILED[*]}"
    exit 1
fi
STATUS=0
log "all checks passed"
