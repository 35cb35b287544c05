#!/usr/bin/env bash
# Installs classify-objects under $DESTDIR$PREFIX, or with --uninstall removes exactly what an
# install put there (the files listed in share/doc/classify-objects/MANIFEST).
#
#   bin/classify-objects                              the program
#   lib/classify-objects/libonnxruntime.so*           ONNX Runtime (and its providers library),
#                                                     found by the program relative to itself
#   share/bash-completion/completions/classify-objects, share/zsh/site-functions/_classify-objects,
#   share/fish/vendor_completions.d/classify-objects.fish   shell completions
#   share/man/man1/classify-objects.1                 the manual page
#   share/classify-objects/export_onnx.py             makes an ONNX package of an arcgis.learn
#                                                     FeatureClassifier not converted natively
#   share/doc/classify-objects/                       LICENSE, third-party licences, MANIFEST
#
# Environment: PREFIX (default /usr/local), DESTDIR (staging root, default none), BIN (the built
# program, default target/release/classify-objects). Used by `make install`, `make uninstall`
# and `make dist`.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BIN=${BIN:-$here/target/release/classify-objects}
root="$DESTDIR$PREFIX"
doc="$root/share/doc/classify-objects"
manifest="$doc/MANIFEST"

log() { printf 'install: %s\n' "$*" >&2; }

uninstall() {
    if [ ! -f "$manifest" ]; then
        log "nothing installed under $root (no $manifest)"
        return
    fi
    while IFS= read -r path; do
        rm -f -- "$root/$path"
    done < "$manifest"
    rm -f -- "$manifest"
    # The folders only classify-objects uses, once empty.
    find "$doc" "$root/lib/classify-objects" "$root/share/classify-objects" -depth -type d -empty -delete 2>/dev/null || true
    log "removed classify-objects from $root"
}

if [ "${1:-}" = "--uninstall" ]; then
    uninstall
    exit 0
fi

[ -x "$BIN" ] || { log "$BIN is not built; run cargo build --release (make install does)"; exit 2; }
ort="$here/.onnxruntime/lib"
ort_lib=$(ls "$ort"/libonnxruntime.so.* 2>/dev/null | head -1 || true)
[ -n "$ort_lib" ] || { log "no ONNX Runtime library in $ort; run scripts/setup.sh"; exit 2; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib/classify-objects" "$stage/share/man/man1" \
    "$stage/share/bash-completion/completions" "$stage/share/zsh/site-functions" \
    "$stage/share/fish/vendor_completions.d" "$stage/share/doc/classify-objects" \
    "$stage/share/classify-objects"
cp "$BIN" "$stage/bin/classify-objects"
chmod 755 "$stage/bin/classify-objects"
cp "$ort_lib" "$stage/lib/classify-objects/"
ln -s "$(basename "$ort_lib")" "$stage/lib/classify-objects/libonnxruntime.so"
for extra in "$ort"/libonnxruntime_providers_*.so; do
    [ -f "$extra" ] && cp "$extra" "$stage/lib/classify-objects/"
done
"$BIN" completions bash > "$stage/share/bash-completion/completions/classify-objects"
"$BIN" completions zsh > "$stage/share/zsh/site-functions/_classify-objects"
"$BIN" completions fish > "$stage/share/fish/vendor_completions.d/classify-objects.fish"
"$BIN" man > "$stage/share/man/man1/classify-objects.1"
cp "$here/LICENSE" "$stage/share/doc/classify-objects/LICENSE"
cp "$here/tools/export_onnx.py" "$stage/share/classify-objects/export_onnx.py"
python3 "$here/scripts/third_party.py" "$stage/share/doc/classify-objects/third-party"
(cd "$stage" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort) > "$stage/share/doc/classify-objects/MANIFEST"

# Copied in, the manifest last: an interrupted install is finished by running it again.
mkdir -p "$root"
(cd "$stage" && find . -type d) | while IFS= read -r dir; do mkdir -p "$root/$dir"; done
while IFS= read -r path; do
    rm -f -- "$root/$path"
    cp -P -- "$stage/$path" "$root/$path"
done < "$stage/share/doc/classify-objects/MANIFEST"
cp "$stage/share/doc/classify-objects/MANIFEST" "$manifest"
echo "share/doc/classify-objects/MANIFEST" >> "$manifest"
log "installed classify-objects into $root ($(wc -l < "$manifest") files)"
