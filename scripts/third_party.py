#!/usr/bin/env python3
"""Collects the licences of what a built classify-objects carries, into DEST:

* every Rust crate compiled into the binary (`cargo tree -e normal`, build and dev dependencies
  left out): its licence expression in DEST/rust-crates.md and the licence and notice files its
  source ships, in DEST/rust/<name>-<version>/;
* ONNX Runtime's LICENSE and ThirdPartyNotices.txt (from the PyPI wheel, kept by
  scripts/setup.sh in .onnxruntime/licenses/), in DEST/onnxruntime/.

GDAL is not shipped (the binary links the target system's libgdal), so its licence is the
system package's.

usage: scripts/third_party.py DEST
"""
import json
import os
import shutil
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
dest = sys.argv[1]
os.makedirs(dest, exist_ok=True)

tree = subprocess.run(
    ["cargo", "tree", "-e", "normal", "--prefix", "none", "--locked", "-f", "{p}|{l}"],
    cwd=root, check=True, capture_output=True, text=True).stdout
crates = {}
for line in tree.splitlines():
    if "|" not in line:
        continue
    package, licence = line.split("|", 1)
    name, version = package.split()[:2]
    if name == "classify-objects":
        continue
    crates[(name, version.lstrip("v"))] = licence.strip() or "(not declared)"

meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--locked"],
    cwd=root, check=True, capture_output=True, text=True).stdout)
dirs = {(p["name"], p["version"]): os.path.dirname(p["manifest_path"]) for p in meta["packages"]}

lines = ["# Rust crates compiled into classify-objects", "",
         "Each crate's licence as it declares it; the licence and notice files its source ships are in",
         "`rust/<name>-<version>/`.", "", "| crate | version | licence |", "|---|---|---|"]
missing = []
for (name, version), licence in sorted(crates.items()):
    lines.append(f"| {name} | {version} | {licence} |")
    source = dirs.get((name, version))
    files = []
    if source:
        files = [f for f in sorted(os.listdir(source))
                 if f.upper().startswith(("LICENSE", "LICENCE", "COPYING", "NOTICE", "UNLICENSE", "COPYRIGHT"))
                 and os.path.isfile(os.path.join(source, f))]
    if not files:
        missing.append(f"{name} {version}")
        continue
    out = os.path.join(dest, "rust", f"{name}-{version}")
    os.makedirs(out, exist_ok=True)
    for f in files:
        shutil.copyfile(os.path.join(source, f), os.path.join(out, f))
if missing:
    lines += ["", "Crates whose source ships no licence file (their declared licence above applies): "
              + ", ".join(missing) + "."]
with open(os.path.join(dest, "rust-crates.md"), "w") as f:
    f.write("\n".join(lines) + "\n")

ort = os.path.join(root, ".onnxruntime", "licenses")
for f in ("LICENSE", "ThirdPartyNotices.txt"):
    path = os.path.join(ort, f)
    if not os.path.isfile(path):
        sys.exit(f"third_party: {path} is missing; run scripts/setup.sh (it keeps ONNX Runtime's licence)")
    os.makedirs(os.path.join(dest, "onnxruntime"), exist_ok=True)
    shutil.copyfile(path, os.path.join(dest, "onnxruntime", f))
print(f"third_party: {len(crates)} crates, ONNX Runtime's licence and notices -> {dest}", file=sys.stderr)
