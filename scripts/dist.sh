#!/usr/bin/env bash
# Writes dist/classify-objects-VERSION-linux-x86_64.tar.gz: a relocatable tree (bin/, lib/,
# share/, LICENSE) that works wherever it is extracted. The program finds ONNX Runtime in
# ../lib/classify-objects relative to itself; the target needs the GDAL shared library the
# program was linked against (see README "Install").
#
# Environment: BIN (the built program, default target/release/classify-objects), OUT (the folder
# the tarball is written to, default dist/).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$here/target/release/classify-objects}
OUT=${OUT:-$here/dist}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/Cargo.toml" | head -1)
name="classify-objects-$version-linux-$(uname -m)"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

PREFIX="/$name" DESTDIR="$stage" BIN="$BIN" "$here/scripts/install.sh"
# A relocatable tree has no install manifest; the licence sits at its top.
rm -f "$stage/$name/share/doc/classify-objects/MANIFEST"
cp "$here/LICENSE" "$stage/$name/LICENSE"
gdal=$(ldd "$BIN" | awk '/libgdal/ {print $1}')
cat > "$stage/$name/README" <<TEXT
classify-objects $version for Linux $(uname -m)

  bin/classify-objects --help

Needs on the target: the GDAL shared library it was linked against ($gdal; Debian 12: apt install
libgdal32) and glibc $(ldd --version | head -1 | awk '{print $NF}') or newer. ONNX Runtime is in lib/classify-objects/, found by
the program relative to itself. Shell completions and the manual page are in share/; licences in
LICENSE and share/doc/classify-objects/third-party/.
TEXT
mkdir -p "$OUT"
tarball="$OUT/$name.tar.gz"
tar -C "$stage" -czf "$tarball.part" "$name"
mv "$tarball.part" "$tarball"
echo "dist: wrote $tarball ($(du -h "$tarball" | cut -f1))" >&2
