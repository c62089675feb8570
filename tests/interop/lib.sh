# What the interop scripts share, sourced by each after it sets LOG_NAME (the bracketed name of
# its log lines): log/die with the seconds since the script started, the digest a stamp file
# records an install by, a free loopback port (Node, from node.sh), and stopping a process
# (TERM, five seconds, then KILL, then reaped).
# shellcheck shell=bash

START=$(date +%s)
log() { printf '[%s %3ss] %s\n' "$LOG_NAME" "$(($(date +%s) - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

free_port() { "$NODE" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

stop_pid() {
    local pid="$1"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# `npm ci` in DIR when its package.json or lockfile changed since the last install (a stamp in
# node_modules records what it was made from). npm_install DIR WHAT
npm_install() {
    local dir="$1" what="$2" stamp="$1/node_modules/.interop-stamp" hash
    hash="$(hash_of "$dir/package.json" "$dir/package-lock.json")"
    if [[ ! -f "$stamp" ]] || [[ "$(cat "$stamp")" != "$hash" ]]; then
        log "installing $what (npm ci in ${dir#"$ROOT"/})"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
        echo "$hash" >"$stamp"
    fi
}

# The venv tests/interop/.venv with the Python SDK as pinned in py/ (shared by run.sh and
# oauth.sh), made again when the pins changed or it cannot import mcp. Sets PY.
python_venv() {
    PY="$HERE/.venv/bin/python"
    local stamp="$HERE/.venv/.interop-stamp" hash boot
    hash="$(hash_of "$HERE/py/requirements.txt" "$HERE/py/constraints.txt")"
    if [[ ! -f "$stamp" ]] || [[ "$(cat "$stamp")" != "$hash" ]] || ! "$PY" -c 'import mcp' 2>/dev/null; then
        log "creating the Python venv tests/interop/.venv (mcp from PyPI)"
        boot="$(command -v python3.11 || command -v python3)"
        rm -rf "$HERE/.venv"
        "$boot" -m venv "$HERE/.venv"
        "$PY" -m pip install --quiet --disable-pip-version-check \
            -r "$HERE/py/requirements.txt" -c "$HERE/py/constraints.txt" >&2
        echo "$hash" >"$stamp"
    fi
}

# The debug binary, built unless INTEROP_SKIP_BUILD=1. Sets BIN.
memberpass_bin() {
    if [[ "${INTEROP_SKIP_BUILD:-}" != 1 ]]; then
        log "cargo build --bin memberpass"
        cargo build --bin memberpass >&2
    fi
    BIN="$ROOT/target/debug/memberpass"
    [[ -x "$BIN" ]] || die "$BIN not found"
}
