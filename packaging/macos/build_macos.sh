#!/usr/bin/env bash
# Build SpecChat.app and a .dmg into dist/ on macOS (run from anywhere):
#   packaging/macos/build_macos.sh
# Needs Python 3.11 with `pip install -e ".[packaging]"` (llama-cpp-python builds with
# Metal by default on Apple silicon). Signing and notarisation run only when their
# secrets are in the environment, and are skipped with a message otherwise:
#   MACOS_SIGNING_IDENTITY    "Developer ID Application: Name (TEAMID)", in the keychain
#                             (the workflow imports MACOS_CERTIFICATE_P12 into one)
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD   for `xcrun notarytool`
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VERSION=$(python3 -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
WORK="$ROOT/build/macos"
APP="$WORK/pyinstaller/SpecChat.app"
DMG="$ROOT/dist/specchat-$VERSION-macos-$(uname -m).dmg"
mkdir -p "$ROOT/dist" "$WORK"

echo "== icon"
ICONSET="$WORK/specchat.iconset"
rm -rf "$ICONSET" && mkdir -p "$ICONSET"
for size in 16 32 128 256 512; do
    cp "resources/icons/specchat-$size.png" "$ICONSET/icon_${size}x${size}.png"
done
for size in 16 32 128 256; do
    cp "resources/icons/specchat-$((size * 2)).png" "$ICONSET/icon_${size}x${size}@2x.png" 2>/dev/null || true
done
iconutil -c icns "$ICONSET" -o packaging/macos/specchat.icns

echo "== PyInstaller bundle (SpecChat $VERSION)"
python3 -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$WORK/pyinstaller" --workpath "$WORK/pyinstaller-work" packaging/specchat.spec

echo "== self-test of the bundle (fresh home)"
home=$(mktemp -d)
# A windowed app's output goes to its log file; print it either way.
status=0
SPECCHAT_HOME="$home" "$APP/Contents/MacOS/specchat" --self-test || status=$?
cat "$home/logs/specchat-output.log" 2>/dev/null || true
rm -rf "$home"
[ "$status" = 0 ] || { echo "self-test failed ($status)" >&2; exit "$status"; }

if [ -n "${MACOS_SIGNING_IDENTITY:-}" ]; then
    echo "== signing with $MACOS_SIGNING_IDENTITY"
    codesign --force --deep --options runtime --timestamp \
        --entitlements packaging/macos/entitlements.plist \
        --sign "$MACOS_SIGNING_IDENTITY" "$APP"
    codesign --verify --deep --strict "$APP"
else
    echo "== signing skipped: MACOS_SIGNING_IDENTITY is not set (the app is unsigned)"
fi

echo "== dmg"
rm -f "$DMG"
STAGE="$WORK/dmg"
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "SpecChat $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DMG"

if [ -n "${MACOS_SIGNING_IDENTITY:-}" ] && [ -n "${APPLE_ID:-}" ] \
    && [ -n "${APPLE_TEAM_ID:-}" ] && [ -n "${APPLE_APP_PASSWORD:-}" ]; then
    echo "== notarising"
    codesign --sign "$MACOS_SIGNING_IDENTITY" --timestamp "$DMG"
    xcrun notarytool submit "$DMG" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
        --password "$APPLE_APP_PASSWORD" --wait
    xcrun stapler staple "$DMG"
else
    echo "== notarisation skipped: APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD and a signing identity are needed"
fi
ls -la "$ROOT/dist"
