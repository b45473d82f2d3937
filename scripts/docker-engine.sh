#!/bin/sh
# Makes sure a Docker engine answers, and that Compose is there, before the image tests run
# (npm run test:docker). On the project's development machines no engine runs by default and no
# registry is reachable: the shared tool starts one and builds the base images locally. Elsewhere,
# start Docker yourself. Compose: the v2 plugin ("docker compose") or v1 ("docker-compose"); when
# neither exists, Debian's docker-compose package is installed, as scripts/system-packages.sh
# installs socat.
set -eu

ensure_engine() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
  tool="${here}/../../shared/tools/docker-engine/setup.sh"
  if [ -f "$tool" ]; then
    echo "docker-engine: no engine answers; starting one with ${tool} (about a minute the first time)" >&2
    bash "$tool" >&2
    docker info >/dev/null
    return 0
  fi
  echo "docker-engine: no Docker engine answers (docker info failed): start Docker and run again" >&2
  exit 1
}

ensure_compose() {
  if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "docker-engine: no Compose; installing docker-compose (apt-get)" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-compose >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-compose >/dev/null
    fi
    return 0
  fi
  echo "docker-engine: the image tests need Compose: install the docker compose plugin or docker-compose (Debian/Ubuntu: apt-get install docker-compose) and run again" >&2
  exit 1
}

ensure_engine
ensure_compose
