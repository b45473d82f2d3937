#!/bin/sh
# Puts the model into models/resnet18.onnx in an image's build (docker/Dockerfile, stage "model"),
# from the application directory:
#   model.sh "" ""             generates the seeded ResNet18 (no download; the default)
#   model.sh URL SHA256        downloads a pretrained ONNX classifier with "mpg model fetch", which
#                              checks its SHA-256 before keeping it: a mismatch fails the build
# The file name stays resnet18.onnx whatever the model is, so every image finds it in the same
# place; set MPG_MODEL_NAME when running to name it in answers and /v1/model.
set -eu

url="${1:-}"
sha256="${2:-}"
out=models/resnet18.onnx

if [ -z "$url" ] && [ -z "$sha256" ]; then
  node dist/cli/index.js model generate --out "$out"
elif [ -z "$url" ] || [ -z "$sha256" ]; then
  echo "model: MODEL_URL and MODEL_SHA256 go together: give both build arguments, or neither for the generated model" >&2
  exit 2
else
  # mpg model fetch never prints the URL's query or credentials (signed links carry them).
  if ! node dist/cli/index.js model fetch --url "$url" --sha256 "$sha256" --out "$out"; then
    echo "model: the pretrained model was not baked in (see the line above); check MODEL_URL and MODEL_SHA256" >&2
    exit 1
  fi
fi
test -s "$out"
