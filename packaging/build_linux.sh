#!/usr/bin/env bash
# Build SpecChat's Linux installers into dist/: a .deb and a portable .tar.gz.
#
#   packaging/build_linux.sh [--cuda] [--skip-self-test] [--bundle-only]
#
# Runs in the Python environment it is started from, which needs the app and the
# packaging extra: `pip install -e ".[packaging]"`. Steps: PyInstaller onedir bundle
# (packaging/specchat.spec), `specchat --self-test` on that bundle, then the .deb
# (bundle under /opt/specchat, /usr/bin/specchat, menu entry, icons, AppStream file)
# and the .tar.gz (the bundle plus the desktop files and an install note).
#
# --cuda: build llama-cpp-python with CUDA (CMAKE_ARGS="-DGGML_CUDA=on -DGGML_RPC=on", needs the CUDA
#   toolkit; CUDA_ARCHITECTURES picks the GPUs, default "native") into its own virtual
#   environment under build/, and name the packages "specchat-cuda". The bundle then
#   carries llama.cpp's CUDA backend; the app falls back to the CPU when no GPU works.
# --bundle-only: stop after the bundle's self-test (what .ci/run checks).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VARIANT=""
SELF_TEST=1
BUNDLE_ONLY=0
for argument in "$@"; do
    case "$argument" in
        --cuda) VARIANT="-cuda" ;;
        --skip-self-test) SELF_TEST=0 ;;
        --bundle-only) BUNDLE_ONLY=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 0 ;;
        *) echo "build_linux.sh: unknown option $argument (try --help)" >&2; exit 2 ;;
    esac
done

PYTHON=${PYTHON:-python3}
if [ -n "$VARIANT" ]; then
    # A separate environment, so the CPU build's llama-cpp-python is left alone.
    VENV="$ROOT/build/venv-cuda"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    PYTHON="$VENV/bin/python"
    # The pinned llama-cpp-python compiled with the CUDA backend first; installing the
    # app afterwards finds that version satisfied and keeps it.
    CMAKE_ARGS="-DGGML_CUDA=on -DGGML_RPC=on -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES:-native}" \
        FORCE_CMAKE=1 "$PYTHON" -m pip install --no-cache-dir --force-reinstall \
        "$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)"
    "$PYTHON" -m pip install -e ".[packaging]"
fi

VERSION=$("$PYTHON" -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
NAME="specchat$VARIANT"
WORK="$ROOT/build/linux$VARIANT"
BUNDLE="$WORK/pyinstaller/specchat"
mkdir -p "$ROOT/dist"

echo "== PyInstaller bundle ($NAME $VERSION, $ARCH)"
started=$SECONDS
"$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$WORK/pyinstaller" --workpath "$WORK/pyinstaller-work" packaging/specchat.spec
echo "bundle: $(du -sh "$BUNDLE" | cut -f1) in $((SECONDS - started)) s"
# Every library llama-cpp-python loads from its own folder (libllama, libggml*, and
# libggml-rpc in RPC builds, CUDA's backend in --cuda builds) must be in the bundle.
LLAMA_LIB=$("$PYTHON" -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("llama_cpp").origin).parent / "lib")')
# (PyInstaller keeps each library as libNAME.so plus its soname, not every symlink.)
for library in "$LLAMA_LIB"/*.so*; do
    name=$(basename "$library")
    [ -e "$BUNDLE/_internal/llama_cpp/lib/${name%%.so*}.so" ] \
        || { echo "the bundle lacks llama.cpp's $name" >&2; exit 1; }
done

if [ "$SELF_TEST" = 1 ]; then
    echo "== self-test of the bundle (fresh home)"
    home=$(mktemp -d)
    HOME="$home" SPECCHAT_HOME="$home/specchat" "$BUNDLE/specchat" --self-test
    rm -rf "$home"
fi
[ "$BUNDLE_ONLY" = 1 ] && exit 0

echo "== .deb"
STAGE="$WORK/deb"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/metainfo" "$STAGE/usr/share/icons/hicolor/scalable/apps" \
    "$STAGE/usr/share/doc/$NAME"
cp -a "$BUNDLE" "$STAGE/opt/specchat"
ln -s /opt/specchat/specchat "$STAGE/usr/bin/specchat"
cp resources/linux/specchat.desktop "$STAGE/usr/share/applications/"
cp resources/linux/io.github.specchat.SpecChat.metainfo.xml "$STAGE/usr/share/metainfo/"
cp resources/icons/specchat.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/specchat.svg"
for size in 16 24 32 48 64 128 256 512; do
    mkdir -p "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps"
    cp "resources/icons/specchat-$size.png" "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps/specchat.png"
done
cp packaging/linux/copyright "$STAGE/usr/share/doc/$NAME/copyright"
installed_kb=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
# Qt's xcb platform plugin loads these from the system (see /work/shared/pitfalls.md:
# without them the window fails with "Could not load the Qt platform plugin xcb").
sed -e "s/@NAME@/$NAME/" -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" \
    -e "s/@INSTALLED_KB@/$installed_kb/" packaging/linux/control.in > "$STAGE/DEBIAN/control"
if [ -n "$VARIANT" ]; then
    printf 'Conflicts: specchat\nReplaces: specchat\nProvides: specchat\n' >> "$STAGE/DEBIAN/control"
fi
DEB="$ROOT/dist/${NAME}_${VERSION}_${ARCH}.deb"
started=$SECONDS
dpkg-deb --root-owner-group -Zxz -z6 --build "$STAGE" "$DEB"
echo "deb: $(du -h "$DEB" | cut -f1) in $((SECONDS - started)) s"

echo "== portable .tar.gz"
PORTABLE="$WORK/portable/$NAME-$VERSION"
rm -rf "$WORK/portable"
mkdir -p "$PORTABLE"
cp -a "$BUNDLE/." "$PORTABLE/"
mkdir -p "$PORTABLE/share"
cp resources/linux/specchat.desktop resources/icons/specchat-256.png "$PORTABLE/share/"
cp packaging/linux/PORTABLE.txt "$PORTABLE/README.txt"
TARBALL="$ROOT/dist/$NAME-$VERSION-linux-$(uname -m).tar.gz"
tar -C "$WORK/portable" -czf "$TARBALL" "$NAME-$VERSION"
echo "tar.gz: $(du -h "$TARBALL" | cut -f1)"
ls -la "$ROOT/dist"
