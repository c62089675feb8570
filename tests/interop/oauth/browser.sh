#!/bin/sh
# The "browser" mcp-remote opens: mcp-remote calls the npm package `open`, whose bundled xdg-open
# (no desktop session: no DISPLAY, no XDG_CURRENT_DESKTOP) runs `$BROWSER <url>`. This hands the
# URL to the Chromium person. stdio is detached by `open`, so the result goes to $MP_PERSON_LOG.
# $MP_PERSON_MODE_FILE, when it holds "deny", makes the person click Deny (the step-up check).
set -eu
url="$1"
deny=""
if [ -n "${MP_PERSON_MODE_FILE:-}" ] && [ "$(cat "$MP_PERSON_MODE_FILE" 2>/dev/null)" = deny ]; then deny="--deny"; fi
printf '%s\n' "$url" >>"${MP_PERSON_URLS:-/dev/null}"
# Always "succeed": xdg-open runs $BROWSER a second time when it fails; the result is in the log.
"${MP_NODE:-node}" "$(dirname "$0")/person.mjs" authorize --url "$url" $deny >/dev/null || true
