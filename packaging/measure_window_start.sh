#!/usr/bin/env bash
# Seconds from launch until the splash and the main window are visible, under Xvfb,
# alternating the commands given (so a busy machine disturbs them alike):
#   packaging/measure_window_start.sh ROUNDS COMMAND [COMMAND...]
#   e.g. packaging/measure_window_start.sh 3 build/linux/pyinstaller/specchat/specchat \
#            ".venv/bin/python -m gui"
# Each start gets a fresh home folder; Xvfb and the app are stopped afterwards.
set -euo pipefail
ROUNDS=$1
shift
WORK=$(mktemp -d)
# Xvfb gets a free display and writes its number once it accepts clients: a fixed
# number collides with other runs on the same machine, and a fixed sleep is too short
# on a busy one (the app then aborts with "could not connect to display").
# Numbers from 100 up: tools that default to :0 or :99 can then not take it over.
number=100
while [ -e "/tmp/.X$number-lock" ]; do number=$((number + 1)); done
Xvfb ":$number" -displayfd 3 -screen 0 1440x900x24 -nolisten tcp 3>"$WORK/display" &
XVFB_PID=$!
APP_PID=""
trap '[ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null; kill "$XVFB_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do [ -s "$WORK/display" ] && break; sleep 0.1; done
[ -s "$WORK/display" ] || { echo "Xvfb did not start" >&2; exit 1; }
DISPLAY_NUMBER=":$(head -n 1 "$WORK/display")"
visible() { DISPLAY="$DISPLAY_NUMBER" xdotool search --onlyvisible --name "$1" >/dev/null 2>&1; }
for round in $(seq 1 "$ROUNDS"); do
    for command in "$@"; do
        home="$WORK/home-$round-$RANDOM"
        mkdir -p "$home"
        start_ns=$(date +%s%N)
        # shellcheck disable=SC2086 - the command is split into words on purpose
        HOME="$home" SPECCHAT_HOME="$home/specchat" DISPLAY="$DISPLAY_NUMBER" $command \
            >"$WORK/app.log" 2>&1 &
        APP_PID=$!
        splash="" window=""
        for _ in $(seq 1 600); do
            now=$(awk "BEGIN {printf \"%.2f\", ($(date +%s%N) - $start_ns) / 1e9}")
            if [ -z "$splash" ] && visible '^SpecChat is starting$'; then splash=$now; fi
            if visible '^SpecChat$'; then window=$now; break; fi
            sleep 0.05
        done
        echo "round $round  splash ${splash:-?} s  window ${window:-timeout} s  $command"
        # A start that never showed its window: say why (the app's own last words).
        [ -n "$window" ] || tail -n 15 "$WORK/app.log" | sed 's/^/    app: /'
        kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
        APP_PID=""
    done
done
