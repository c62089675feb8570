#!/usr/bin/env bash
# OAuth 2.1 end to end for MemberPass /mcp with real clients, a headless Chromium doing the
# person's part (tests/interop/oauth/person.mjs: sign-in, consent, Connected apps):
#
#   (a) the official TypeScript SDK client (OAuthClientProvider)   oauth/ts-client.mjs
#   (b) the official Python SDK client (OAuthClientProvider)       oauth/py-client.py
#   (c) mcp-remote, driven over stdio, its browser = oauth/browser.sh  oauth/remote-client.mjs
#
# each: connect (401 → discovery → dynamic registration → consent → code → token), list tools,
# call a read tool, be refused a write outside the grant (403 insufficient_scope), refresh after
# the access token expired (the server runs with --oauth-access-ttl ${ACCESS_TTL_S}s), revoke in
# Connected apps (→ 401), reconnect. Each client gets a fresh server (own data dir, own port).
#
#   tests/interop/oauth.sh            # from anywhere; it finds the repo itself
#   tests/interop/oauth.sh ts py      # only some clients (ts, py, remote)
#
# Needs: the Rust toolchain, npm, Python 3.11, chromium + chromedriver (apt: chromium
# chromium-driver; .ci/run installs them), and the npm and PyPI registries on the first run.
# Installs (git-ignored): .node/ (Node 22, shared with run.sh), oauth/node_modules (npm ci from
# oauth/package-lock.json: the TS SDK and mcp-remote), .venv (shared with run.sh, ../py pins).
#
# Knobs: INTEROP_SKIP_BUILD=1 (use target/debug/memberpass as it is), INTEROP_KEEP=1 (keep the
# run dir), ACCESS_TTL_S (default 4; mcp-remote: REMOTE_ACCESS_TTL_S, default 66), CHECK_TIMEOUT_S (per check, default 60),
# OAUTH_CLIENT_TIMEOUT_S (per client, default 300).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OAUTH="$HERE/oauth"
cd "$ROOT"

LOG_NAME=oauth
# shellcheck source=lib.sh
source "$HERE/lib.sh"

CLIENTS=("$@")
((${#CLIENTS[@]})) || CLIENTS=(ts py remote)
for c in "${CLIENTS[@]}"; do [[ "$c" =~ ^(ts|py|remote)$ ]] || die "unknown client $c (ts, py, remote)"; done

ACCESS_TTL_S="${ACCESS_TTL_S:-4}"
CHECK_TIMEOUT_S="${CHECK_TIMEOUT_S:-60}"
OAUTH_CLIENT_TIMEOUT_S="${OAUTH_CLIENT_TIMEOUT_S:-300}"

# ---------------------------------------------------------------------------------------------
# 1. Browser, toolchains, clients (idempotent)

CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver || true)}"
[[ -x "$CHROMEDRIVER" ]] || die "no chromedriver (apt-get install chromium chromium-driver): the person's browser is required"
command -v chromium >/dev/null || [[ -n "${CHROMIUM:-}" ]] || die "no chromium (apt-get install chromium)"

# shellcheck source=node.sh
source "$HERE/node.sh"
export PATH="$(dirname "$NODE"):$PATH"

npm_install "$OAUTH" "the TypeScript SDK and mcp-remote"

python_venv

# ---------------------------------------------------------------------------------------------
# 2. The server

memberpass_bin

unset MEMBERPASS_DATABASE_URL MEMBERPASS_DATA_DIR MEMBERPASS_ENV DISPLAY WAYLAND_DISPLAY XDG_CURRENT_DESKTOP

mkdir -p "$HERE/.runs"
RUN_DIR="$(mktemp -d "$HERE/.runs/oauth-$(date +%Y%m%d-%H%M%S)-XXXX")"
SERVER_PID=""
STATUS=1

stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=""
}
cleanup() {
    local rc=$?
    stop_server
    if [[ $rc -eq 0 && $STATUS -eq 0 && "${INTEROP_KEEP:-}" != 1 ]]; then
        rm -rf "$RUN_DIR"
    else
        log "run dir kept: ${RUN_DIR#"$ROOT"/} (<client>/server.log, <client>/client.log, <client>/data, remote/)"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

json_get() {
    "$NODE" -e 'const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[process.argv[2]]; if (v == null) process.exit(1); console.log(v)' "$1" "$2"
}

# start_server DIR TTL_S: a fresh `serve --demo` (its own data dir) on a free loopback port; sets
# BASE and the demo owner's credentials (the password is printed when the demo is seeded).
start_server() {
    local dir="$1" ttl="$2" port
    mkdir -p "$dir"
    port="$(free_port)"
    BASE="http://127.0.0.1:$port"
    log "starting memberpass serve --demo on $BASE (access tokens live ${ttl}s)"
    # --rate-limit-auth-failures: every expired or revoked token a client presents is a refused
    # credential of this one address; --rate-limit-oauth-registrations: a client may register
    # again. Both limits are tested elsewhere; here they stay out of the way.
    MEMBERPASS_LOG="${MEMBERPASS_LOG:-info}" \
        "$BIN" --data-dir "$dir/data" --json serve --listen "127.0.0.1:$port" --demo \
        --oauth-access-ttl "${ttl}s" \
        --rate-limit-auth-failures 1000 --rate-limit-oauth-registrations 100 --rate-limit-mcp 1000 \
        >"$dir/serve.json" 2>"$dir/server.log" &
    SERVER_PID=$!
    healthy() {
        "$NODE" -e 'fetch(process.argv[1], {signal: AbortSignal.timeout(2000)}).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
            "$BASE/healthz" 2>/dev/null
    }
    for _ in $(seq 300); do
        healthy && break
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$dir/server.log" >&2; die "server exited"; }
        sleep 0.1
    done
    healthy || die "server did not answer GET /healthz within 30 s"
    for _ in $(seq 100); do [[ -s "$dir/serve.json" ]] && break; sleep 0.1; done
    MP_PERSON_EMAIL="$(json_get "$dir/serve.json" email)" || die "no email in the demo output"
    MP_PERSON_PASSWORD="$(json_get "$dir/serve.json" password)" || die "no password in the demo output"
    # The authorization server must be there at all (a clear message rather than failing checks).
    "$NODE" -e 'fetch(process.argv[1]).then(async r => { const m = await r.json(); if (!m.authorization_endpoint) process.exit(1); return fetch(m.authorization_endpoint, {redirect: "manual"}) }).then(r => process.exit(r.status === 404 ? 3 : 0), () => process.exit(1))' \
        "$BASE/.well-known/oauth-authorization-server" || {
        local rc=$?
        [[ $rc -eq 3 ]] && die "GET /authorize answers 404: this build has no authorization endpoint yet (branch oauth-flow)"
        die "no authorization server metadata at $BASE/.well-known/oauth-authorization-server"
    }
    export MCP_URL="$BASE/mcp" MP_BASE="$BASE" ACCESS_TTL_S="$ttl" MP_PERSON_EMAIL MP_PERSON_PASSWORD
}

export CHECK_TIMEOUT_S MP_NODE="$NODE" CHROMEDRIVER
export CHECK_TIMEOUT_MS=$((CHECK_TIMEOUT_S * 1000))

# ---------------------------------------------------------------------------------------------
# 3. The clients, one after the other, each with a server of its own (each under a hard timeout)

# mcp-remote refreshes 60 s before expiry (its TOKEN_EXPIRY_MARGIN_MS) and stops after 20 token
# exchanges in 30 s: with 4-second tokens it would refresh before every request and trip that
# guard. Its tokens live a little longer than the margin, so it refreshes ahead as it would with
# the default hour, just sooner.
REMOTE_ACCESS_TTL_S="${REMOTE_ACCESS_TTL_S:-66}"

FAILED=()
TIMES=()
for c in "${CLIENTS[@]}"; do
    t0=$(date +%s)
    dir="$RUN_DIR/$c"
    case "$c" in
        ts) start_server "$dir" "$ACCESS_TTL_S"; log "TypeScript SDK client"; cmd=("$NODE" "$OAUTH/ts-client.mjs") ;;
        py) start_server "$dir" "$ACCESS_TTL_S"; log "Python SDK client"; cmd=("$PY" "$OAUTH/py-client.py") ;;
        remote)
            start_server "$dir" "$REMOTE_ACCESS_TTL_S"; log "mcp-remote"
            cmd=(env MP_REMOTE_DIR="$dir/remote" MP_SERVER_LOG="$dir/server.log" MP_REFRESH_MARGIN_S=60 "$NODE" "$OAUTH/remote-client.mjs")
            ;;
    esac
    if ! timeout --kill-after=10 "$OAUTH_CLIENT_TIMEOUT_S" "${cmd[@]}" 2>"$dir/client.log"; then
        FAILED+=("$c")
        log "$c failed; its stderr (tail):"
        tail -n 30 "$dir/client.log" >&2
        log "$c: server log (last 30 lines):"
        tail -n 30 "$dir/server.log" | sed -E 's/\x1b\[[0-9;]*m//g' >&2
    fi
    stop_server
    TIMES+=("$c $(($(date +%s) - t0))s")
done
log "times: ${TIMES[*]}"

# Nothing of the person may be left behind: chromedriver/Chromium of this run's profiles.
# (mcp-remote's browser runs detached: give a last one a few seconds to close.)
for _ in $(seq 100); do pgrep -f "memberpass-person-" >/dev/null 2>&1 || break; sleep 0.1; done
if pgrep -f "memberpass-person-" >/dev/null 2>&1; then
    FAILED+=("leftover Chromium processes: $(pgrep -f "memberpass-person-" | tr '\n' ' ')")
fi

if ((${#FAILED[@]})); then
    log "FAILED: ${FAILED[*]}"
    exit 1
fi
STATUS=0
log "all OAuth clients passed (${TIMES[*]})"
