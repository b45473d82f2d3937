#!/bin/bash
# Sets up an AWS Nitro Enclaves parent instance (Amazon Linux 2023 or Ubuntu 22.04/24.04) for
# mixed-privacy-gateway: packages, the enclave allocator's CPUs and memory, the mpg user, and the
# systemd units of the parent relay, the enclave and the gateway. Idempotent: each step checks
# first and says "ok:" when there is nothing to do. --dry-run prints every action and changes
# nothing. Run "setup-parent.sh --help" for the options; scripts/README.md says what it installs.
# On Ubuntu, which has no nitro-cli package, it installs Docker, socat and the build tools and
# prints how to build nitro-cli from source (AWS's own procedure); it does not build it itself.
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly here
readonly deploy_dir="${here}/../deploy"
readonly service_user=mpg
readonly allocator_unit=nitro-enclaves-allocator.service
readonly mpg_units=(mpg-enclave-relay.service mpg-enclave.service mpg-gateway.service)
readonly nitro_cli_repo=https://github.com/aws/aws-nitro-enclaves-cli.git

# Exit codes.
readonly EXIT_USAGE=2      # a bad flag or value, or an unsupported distribution
readonly EXIT_TODO=3       # everything this script can do is done; "todo:" lines say what is left

usage() {
  cat <<EOF
Usage: setup-parent.sh [options]

Sets up this EC2 instance as a Nitro Enclaves parent for mixed-privacy-gateway. Run as root.

  --dry-run                 print every action (commands, file contents and diffs); change nothing
  --enclave-memory-mib N    memory reserved for enclaves, MiB (default 4096)
  --enclave-cpus N          CPUs reserved for enclaves (default 2; even on x86: whole cores)
  --eif FILE                the enclave image: memory must be at least 4x its size
  --prefix DIR              where the project is installed (default /opt/mixed-privacy-gateway)
  --os-release FILE         distribution description (default /etc/os-release)
  --root DIR                prefix every path written or read under /etc with DIR (tests, images);
                            commands still run as usual
  --arch ARCH               the machine (default: uname -m); the even-CPU rule applies to x86_64
  -h, --help                this text

Exit codes: 0 done; 1 a command failed; 2 a bad option or an unsupported distribution;
3 done, but some step needs a hand ("todo:" lines say which).
EOF
}

fail_usage() {
  echo "setup-parent: $*" >&2
  echo "setup-parent: run with --help for the options" >&2
  exit "$EXIT_USAGE"
}

on_error() {
  local status="$1" line="$2" command="$3"
  echo "setup-parent: FAILED (exit ${status}) at line ${line}: ${command}" >&2
  echo "setup-parent: fix the cause and run it again; the steps before this one are kept" >&2
  exit "$status"
}
trap 'on_error "$?" "$LINENO" "$BASH_COMMAND"' ERR

# ---- options ----------------------------------------------------------------------------------
dry_run=false
memory_mib=4096
cpu_count=2
eif=''
prefix=/opt/mixed-privacy-gateway
os_release=/etc/os-release
root=''
arch=''

need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ]; then fail_usage "$1 needs a value"; fi
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=true; shift ;;
    --enclave-memory-mib) need_value "$@"; memory_mib="$2"; shift 2 ;;
    --enclave-cpus) need_value "$@"; cpu_count="$2"; shift 2 ;;
    --eif) need_value "$@"; eif="$2"; shift 2 ;;
    --prefix) need_value "$@"; prefix="$2"; shift 2 ;;
    --os-release) need_value "$@"; os_release="$2"; shift 2 ;;
    --root) need_value "$@"; root="$2"; shift 2 ;;
    --arch) need_value "$@"; arch="$2"; shift 2 ;;
    --*=*) fail_usage "write ${1%%=*} VALUE, not ${1}" ;;
    -h|--help) usage; exit 0 ;;
    *) fail_usage "unknown option: $1" ;;
  esac
done

is_count() { [[ "$1" =~ ^[1-9][0-9]{0,8}$ ]]; }

is_count "$memory_mib" || fail_usage "--enclave-memory-mib must be a whole number of MiB, not '${memory_mib}'"
is_count "$cpu_count" || fail_usage "--enclave-cpus must be a whole number, not '${cpu_count}'"
[ -n "$arch" ] || arch="$(uname -m)"
if [ "$arch" = x86_64 ] && [ $(( cpu_count % 2 )) -ne 0 ]; then
  fail_usage "--enclave-cpus must be even on x86_64 (${cpu_count} given): enclaves get whole cores, both hyper-threads"
fi
# The path goes into unit files through sed and into ExecStart= unquoted: keep it plain.
[[ "$prefix" =~ ^/[A-Za-z0-9._/-]+$ ]] || fail_usage "--prefix must be an absolute path of letters, digits, '.', '_', '-' and '/', not '${prefix}'"
if [ -n "$root" ]; then
  [ -d "$root" ] || fail_usage "--root ${root} is not a directory"
  root="$(cd "$root" && pwd)"
fi
[ -r "$os_release" ] || fail_usage "cannot read ${os_release}"
if [ -n "$eif" ]; then
  [ -f "$eif" ] || fail_usage "--eif ${eif} is not a file"
  eif="$(cd "$(dirname "$eif")" && pwd)/$(basename "$eif")"
  [[ "$eif" =~ ^/[A-Za-z0-9._/-]+$ ]] || fail_usage "--eif must be a path of letters, digits, '.', '_', '-' and '/', not '${eif}'"
  eif_bytes="$(stat -c %s "$eif")"
  eif_mib=$(( (eif_bytes + 1048575) / 1048576 ))
  if [ "$memory_mib" -lt $(( eif_mib * 4 )) ]; then
    fail_usage "--enclave-memory-mib ${memory_mib} is less than 4x the EIF's ${eif_mib} MiB (${eif}): give at least $(( eif_mib * 4 ))"
  fi
fi
if ! "$dry_run" && [ -z "$root" ] && [ "$EUID" -ne 0 ]; then
  fail_usage "run as root (or with --dry-run to see what it would do)"
fi

# ---- reporting and acting ---------------------------------------------------------------------
changes=0
todos=()

say() { printf '%s\n' "$*"; }
ok() { say "ok: $*"; }
todo() { todos+=("$*"); say "todo: $*"; }

# Runs a command that changes the machine, or only prints it under --dry-run.
act() {
  changes=$(( changes + 1 ))
  local shown
  shown="$(printf '%q ' "$@")"
  if "$dry_run"; then
    say "would run: ${shown% }"
  else
    say "run: ${shown% }"
    "$@"
  fi
}

indent() { sed 's/^/    /'; }

# write_file PATH MODE CONTENT: writes PATH (under --root) through a temporary file and a rename.
write_file() {
  local path="$1" mode="$2" content="$3"
  local target="${root}${path}"
  changes=$(( changes + 1 ))
  if [ -e "$target" ]; then
    if "$dry_run"; then say "would change ${path}:"; else say "change ${path}:"; fi
    diff -u --label "${path} (now)" --label "${path} (new)" "$target" <(printf '%s\n' "$content") | indent || true
  else
    if "$dry_run"; then say "would write ${path} (mode ${mode}):"; else say "write ${path} (mode ${mode}):"; fi
    printf '%s\n' "$content" | indent
  fi
  "$dry_run" && return 0
  mkdir -p "$(dirname "$target")"
  local tmp
  tmp="$(mktemp "${target}.XXXXXX")"
  printf '%s\n' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$target"
}

# same_content PATH CONTENT: whether PATH (under --root) holds exactly CONTENT.
same_content() {
  [ -f "${root}$1" ] && [ "$(cat "${root}$1"; printf x)" = "$(printf '%s\n' "$2"; printf x)" ]
}

# Fills a template from deploy/ with this run's values.
render() {
  sed -e "s|@PREFIX@|${prefix}|g" \
      -e "s|@MEMORY_MIB@|${memory_mib}|g" \
      -e "s|@CPU_COUNT@|${cpu_count}|g" \
      -e "s|@EIF@|${eif_setting}|g" \
      "$1"
}

# An operator's configuration is never overwritten: written once, then theirs.
write_config_once() {
  local path="$1" content="$2"
  if [ -e "${root}${path}" ]; then
    if same_content "$path" "$content"; then
      ok "${path} exists"
    else
      ok "${path} exists and differs from the template: kept as it is"
    fi
  else
    write_file "$path" 0644 "$content"
  fi
}

have() { command -v "$1" >/dev/null 2>&1; }
unit_enabled() { have systemctl && systemctl is-enabled --quiet "$1" 2>/dev/null; }

# ---- 1. the distribution ----------------------------------------------------------------------
# Read, not sourced: the file is only data here.
os_field() {
  sed -n "s/^$1=//p" "$os_release" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}
os_id="$(os_field ID)"
os_version="$(os_field VERSION_ID)"
os_name="$(os_field PRETTY_NAME)"
case "${os_id}:${os_version}" in
  amzn:2023) distro=al2023 ;;
  ubuntu:22.04|ubuntu:24.04) distro=ubuntu ;;
  *)
    echo "setup-parent: unsupported distribution: ${os_name:-unknown} (ID=${os_id:-?} VERSION_ID=${os_version:-?}, from ${os_release})" >&2
    echo "setup-parent: supported: Amazon Linux 2023 (ID=amzn VERSION_ID=2023), Ubuntu 22.04 and 24.04" >&2
    exit "$EXIT_USAGE"
    ;;
esac
eif_setting="${eif:-${prefix}/mpg-enclave.eif}"
if "$dry_run"; then say "dry run: nothing will be changed"; fi
say "distribution: ${os_name:-${os_id} ${os_version}} (${distro}), ${arch}; enclave: ${cpu_count} CPUs, ${memory_mib} MiB"

# ---- 2. packages ------------------------------------------------------------------------------
nitro_cli_ready=true
if [ "$distro" = al2023 ]; then
  packages=(aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel docker socat)
  missing=()
  for package in "${packages[@]}"; do
    if ! { have rpm && rpm -q --quiet "$package" 2>/dev/null; }; then missing+=("$package"); fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    ok "packages already installed: ${packages[*]}"
  else
    act dnf install -y "${missing[@]}"
  fi
else
  # Ubuntu has no nitro-cli package. Docker, socat and what building nitro-cli from source needs
  # are installed here; the build itself (a Docker-based build of Rust code, several minutes and
  # gigabytes) is left to the operator, as AWS documents it, and printed below.
  packages=(docker.io socat git make gcc libc6-dev curl)
  missing=()
  for package in "${packages[@]}"; do
    if ! { have dpkg-query && [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)" = 'install ok installed' ]; }; then
      missing+=("$package")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    ok "packages already installed: ${packages[*]}"
  else
    act apt-get update
    act env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  fi
  if have nitro-cli; then
    ok "nitro-cli is installed ($(command -v nitro-cli))"
  else
    nitro_cli_ready=false
    todo "nitro-cli is not installed; Ubuntu has no package. Build it from source (AWS: 'Installing the Nitro Enclaves CLI on Linux'), then run this script again:
    git clone ${nitro_cli_repo} /usr/local/src/aws-nitro-enclaves-cli
    cd /usr/local/src/aws-nitro-enclaves-cli
    make nitro-cli && make vsock-proxy
    make NITRO_CLI_INSTALL_DIR=/ install
    source /etc/profile.d/nitro-cli-env.sh && nitro-cli-config -i"
  fi
fi

# ---- 3. the enclave allocator -----------------------------------------------------------------
allocator_yaml=/etc/nitro_enclaves/allocator.yaml
allocator_content="---
# Written by mixed-privacy-gateway scripts/setup-parent.sh: the CPUs and memory reserved for
# enclaves when ${allocator_unit} starts.
memory_mib: ${memory_mib}
cpu_count: ${cpu_count}"
yaml_value() {
  sed -n "s/^$1:[[:space:]]*\([^[:space:]#]*\).*/\1/p" "${root}${allocator_yaml}" | tail -n 1
}
allocator_changed=false
if [ -f "${root}${allocator_yaml}" ] && [ "$(yaml_value memory_mib)" = "$memory_mib" ] \
  && [ "$(yaml_value cpu_count)" = "$cpu_count" ] && [ -z "$(yaml_value cpu_pool)" ]; then
  ok "allocator.yaml already has memory_mib=${memory_mib} cpu_count=${cpu_count}"
else
  write_file "$allocator_yaml" 0644 "$allocator_content"
  allocator_changed=true
fi
if ! "$nitro_cli_ready"; then
  todo "enable ${allocator_unit} once nitro-cli is installed: systemctl enable --now ${allocator_unit}"
elif "$allocator_changed"; then
  # The allocator reserves hugepages and CPUs when it starts: a new size needs a restart.
  act systemctl enable "$allocator_unit"
  act systemctl restart "$allocator_unit"
elif ! unit_enabled "$allocator_unit"; then
  act systemctl enable --now "$allocator_unit"
else
  ok "${allocator_unit} is enabled and allocator.yaml is unchanged: no restart"
fi

if unit_enabled docker.service; then
  ok "docker.service is enabled"
else
  act systemctl enable --now docker.service
fi

# ---- 4. the service user ----------------------------------------------------------------------
user_exists=false
if getent passwd "$service_user" >/dev/null 2>&1; then
  user_exists=true
  ok "user ${service_user} exists"
else
  nologin=/usr/sbin/nologin
  act useradd --system --user-group --no-create-home --home-dir /nonexistent --shell "$nologin" "$service_user"
  "$dry_run" || user_exists=true
fi
for group in ne docker; do
  entry="$(getent group "$group" 2>/dev/null || true)"
  members=",${entry##*:},"
  if [ -z "$entry" ]; then
    # ne comes with nitro-cli, docker with Docker: under --dry-run they are not installed yet.
    if "$dry_run"; then
      act usermod --append --groups "$group" "$service_user"
    else
      todo "group ${group} does not exist yet (nitro-cli creates ne, Docker docker); then: usermod --append --groups ${group} ${service_user}"
    fi
  elif [[ "$members" == *",${service_user},"* ]]; then
    ok "user ${service_user} is in group ${group}"
  elif "$user_exists" || "$dry_run"; then
    act usermod --append --groups "$group" "$service_user"
  fi
done

# ---- 5. directories, units and configuration --------------------------------------------------
if [ -d "${root}/etc/mpg" ]; then
  ok "/etc/mpg exists"
else
  act install -d -m 0755 "${root}/etc/mpg"
fi

tmpfiles_conf=/etc/tmpfiles.d/mpg.conf
tmpfiles_content="$(cat "${deploy_dir}/tmpfiles.d/mpg.conf")"
if same_content "$tmpfiles_conf" "$tmpfiles_content"; then
  ok "${tmpfiles_conf} is up to date"
else
  write_file "$tmpfiles_conf" 0644 "$tmpfiles_content"
  act systemd-tmpfiles --create "${root}${tmpfiles_conf}"
fi

write_config_once /etc/mpg/enclave-relay.env "$(render "${deploy_dir}/env/enclave-relay.env")"
write_config_once /etc/mpg/enclave.env "$(render "${deploy_dir}/env/enclave.env")"
write_config_once /etc/mpg/gateway.json "$(render "${deploy_dir}/gateway.example.json")"

units_changed=false
for unit in "${mpg_units[@]}"; do
  content="$(render "${deploy_dir}/systemd/${unit}")"
  if same_content "/etc/systemd/system/${unit}" "$content"; then
    ok "/etc/systemd/system/${unit} is up to date"
  else
    write_file "/etc/systemd/system/${unit}" 0644 "$content"
    units_changed=true
  fi
done
if "$units_changed"; then
  act systemctl daemon-reload
  say "note: units already running keep their old definition until restarted: systemctl restart ${mpg_units[*]}"
fi
for unit in "${mpg_units[@]}"; do
  if unit_enabled "$unit"; then
    ok "${unit} is enabled"
  else
    act systemctl enable "$unit"
  fi
done

# The enclave asks for what enclave.env says; more than the allocator reserves fails at start.
if [ -f "${root}/etc/mpg/enclave.env" ]; then
  asked_mib="$(sed -n 's/^MPG_MEMORY_MIB=\([0-9]*\).*/\1/p' "${root}/etc/mpg/enclave.env" | tail -n 1)"
  asked_cpus="$(sed -n 's/^MPG_CPU_COUNT=\([0-9]*\).*/\1/p' "${root}/etc/mpg/enclave.env" | tail -n 1)"
  if [ -n "$asked_mib" ] && [ "$asked_mib" -gt "$memory_mib" ]; then
    todo "/etc/mpg/enclave.env asks for MPG_MEMORY_MIB=${asked_mib}, more than the ${memory_mib} MiB reserved: lower it or rerun with --enclave-memory-mib ${asked_mib}"
  fi
  if [ -n "$asked_cpus" ] && [ "$asked_cpus" -gt "$cpu_count" ]; then
    todo "/etc/mpg/enclave.env asks for MPG_CPU_COUNT=${asked_cpus}, more than the ${cpu_count} CPUs reserved: lower it or rerun with --enclave-cpus ${asked_cpus}"
  fi
fi

# ---- 6. the project itself --------------------------------------------------------------------
# Not cloned here: which commit to run is the operator's choice.
if [ -x "${prefix}/bin/mpg" ]; then
  ok "${prefix}/bin/mpg is installed"
else
  todo "${prefix}/bin/mpg is missing: install the project there (as root), then build the enclave image:
    git clone <this repository> ${prefix} && cd ${prefix} && npm ci && npm run build
    docker build -f docker/Dockerfile --target enclave -t mpg-enclave:latest .
    bin/mpg enclave build --docker-uri mpg-enclave:latest --eif ${eif_setting} --measurements /etc/mpg/measurements.json
  (the gateway pins those PCRs with attestationPcrs in /etc/mpg/gateway.json and refuses to start without them)"
fi
if [ ! -f "$eif_setting" ] && [ -x "${prefix}/bin/mpg" ]; then
  todo "the enclave image ${eif_setting} does not exist yet: build it with 'mpg enclave build --measurements /etc/mpg/measurements.json' (see enclave/README.md): the gateway pins those PCRs"
fi

# ---- summary ----------------------------------------------------------------------------------
if "$dry_run"; then
  say "dry run: ${changes} action(s) would be taken; nothing was changed"
elif [ "$changes" -eq 0 ]; then
  say "no changes: the parent instance is already set up"
else
  say "done: ${changes} change(s)"
fi
if [ "${#todos[@]}" -gt 0 ]; then
  say "${#todos[@]} step(s) need a hand: see the todo: lines above"
  "$dry_run" || exit "$EXIT_TODO"
fi
say "start: systemctl start ${mpg_units[*]}"
