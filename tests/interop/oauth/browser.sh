#!/bin/sh
# The "browser" mcp-remote opens: mcp-remote calls the npm package `open`, whose bundled xdg-open
# (no desktop session: no DISPLAY, no XDG_CURRENT_DESKTOP) runs `$BROWSER <url>`. This hands the
# URL to the Chromium person. stdio is detached by `open`, so the result goes to $MP_PERSON_LOG.
set -eu
url="$1"
# $MP_PERSON_MODE_FILE: "deny" (click Deny), "tick:<ability>" (tick it, then Allow), else Allow.
mode="$(cat "${MP_PERSON_MODE_FILE:-/dev/null}" 2>/dev/null || true)"
extra=""
case "$mode" in
    deny) extra="--deny" ;;
    tick:*) extra="--ability ${mode#tick:}" ;;
esac
printf '%s\n' "$url" >>"${MP_PERSON_URLS:-/dev/null}"
# Always "succeed": xdg-open runs $BROWSER a second time when it fails; the result is in the log.
"${MP_NODE:-node}" "$(dirname "$0")/person.mjs" authorize --url "$url" $extra >/dev/null || true
