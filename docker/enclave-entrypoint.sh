#!/bin/bash
# The enclave's first process on Nitro. "mpg enclave entrypoint" brings lo up, starts the model
# server on 127.0.0.1 and relays a Unix socket to it; socat bridges the enclave's vsock port to
# that socket, since Node cannot listen on AF_VSOCK. With fork, each vsock connection gets one
# Unix connection for its whole life, so the gateway's keep-alive connections hold end to end.
# Arguments are passed to the model server (e.g. --threads 2). Whichever process dies first
# takes the other down, and the enclave's exit code is the first failure's.
set -euo pipefail

readonly standin_dir=/run/mpg
readonly standin="${standin_dir}/vsock.sock"
readonly vsock_port="${MPG_VSOCK_PORT:-5005}"
readonly ready_timeout_s=120

mkdir -p "$standin_dir"
# "mpg enclave entrypoint" brings lo up itself when it is down (it is, in a new enclave).

/app/bin/mpg enclave entrypoint --enclave-mode nitro --vsock-standin "$standin" -- "$@" &
entrypoint_pid=$!

socat_pid=''
stopping=0
stop() {
  stopping=1
  kill -TERM "$entrypoint_pid" ${socat_pid:+"$socat_pid"} 2>/dev/null || true
}
trap stop TERM INT

# The relay creates the socket once the model server listens (loading the model takes seconds).
waited_ds=0
until [ -S "$standin" ]; do
  if ! kill -0 "$entrypoint_pid" 2>/dev/null; then
    status=0
    wait "$entrypoint_pid" || status=$?
    echo "enclave-entrypoint: the model server's entrypoint exited (${status}) before it listened" >&2
    exit "$(( status == 0 ? 1 : status ))"
  fi
  if [ "$waited_ds" -ge $(( ready_timeout_s * 10 )) ]; then
    echo "enclave-entrypoint: ${standin} did not appear within ${ready_timeout_s} s" >&2
    stop
    exit 1
  fi
  sleep 0.1
  waited_ds=$(( waited_ds + 1 ))
done

socat "VSOCK-LISTEN:${vsock_port},fork,reuseaddr" "UNIX-CONNECT:${standin}" &
socat_pid=$!
echo "enclave-entrypoint: vsock port ${vsock_port} -> unix:${standin}" >&2

status=0
wait -n "$entrypoint_pid" "$socat_pid" || status=$?
if [ "$stopping" -eq 1 ]; then
  # Asked to stop (the trap interrupted wait): the model server drains its requests in flight,
  # and its exit code is the enclave's.
  status=0
  wait "$entrypoint_pid" || status=$?
  wait || true
  exit "$status"
fi
# One of the two died by itself: take the other down and report the failure.
stop
wait || true
exit "$(( status == 0 ? 1 : status ))"
