#!/bin/sh
# Makes sure a Docker engine answers before the image tests run (npm run test:docker). On the
# project's development machines no engine runs by default and no registry is reachable: the
# shared tool starts one and builds the base images locally. Elsewhere, start Docker yourself.
set -eu

if docker info >/dev/null 2>&1; then
  exit 0
fi
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
tool="${here}/../../shared/tools/docker-engine/setup.sh"
if [ -f "$tool" ]; then
  echo "docker-engine: no engine answers; starting one with ${tool} (about a minute the first time)" >&2
  bash "$tool" >&2
  docker info >/dev/null
  exit 0
fi
echo "docker-engine: no Docker engine answers (docker info failed): start Docker and run again" >&2
exit 1
