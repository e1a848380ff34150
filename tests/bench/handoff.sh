#!/usr/bin/env bash
# `make bench-handoff`: a handoff beside a direct fetch, HAProxy on a
# front-end with no Baton, and HAProxy behind Baton, in one run on the netns
# testbed (see tests/bench/handoff.py). Needs root; prints figures only.
set -euo pipefail
exec python3 "$(dirname "$0")/handoff.py" "$@"
