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
