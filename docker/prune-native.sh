#!/bin/sh
# Keeps only this platform's native binaries in node_modules: onnxruntime-node ships builds for
# darwin, win32 and both Linux architectures (about 220 MB that an image never loads).
# Run in an image's build stage, from the application directory.
set -eu

arch=$(node -p 'process.arch')
for dir in node_modules/onnxruntime-node/bin/napi-v*/*/*; do
  [ -d "$dir" ] || continue
  case "$dir" in
    */linux/"$arch") ;;
    *) rm -rf "$dir" ;;
  esac
done
# Directories left empty (darwin/, win32/) go too.
find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 -type d -empty -delete
test -n "$(find node_modules/onnxruntime-node/bin -path "*/linux/${arch}/*.node" -print -quit)" \
  || { echo "prune-native: no onnxruntime-node binding for linux/${arch} is left" >&2; exit 1; }
