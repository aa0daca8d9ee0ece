#!/usr/bin/env bash
# CI for the redisstore module: installs redis-server from the system's
# package manager when it is missing, starts it on a free loopback port,
# points the tests at it through AGENTAUTH_REDIS_ADDR, runs vet and the
# race-enabled tests, and stops the server on exit.
# Run from anywhere: bash redisstore/ci.sh
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "redis-server is missing and apt-get is not available" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Install from the cached package lists; refresh them only when that fails.
  as_root apt-get install -y redis-server || { as_root apt-get update && as_root apt-get install -y redis-server; }
fi

# A port is free when nothing answers a TCP connect; try random high ports.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

ping_redis() { # prints the reply to PING, if any
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
    printf 'PING\r\n' >&3
    reply=""
    read -r -t 1 reply <&3 || true
    printf '%s' "${reply%$'\r'}" ) 2>/dev/null
}

port=""
for _ in $(seq 1 20); do
  candidate=$(( 20000 + RANDOM % 40000 ))
  port_in_use "$candidate" && continue
  redis-server --port "$candidate" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning &
  redis_pid=$!
  for _ in $(seq 1 100); do # up to 5 s
    if [ "$(ping_redis "$candidate")" = "+PONG" ]; then port=$candidate; break; fi
    kill -0 "$redis_pid" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$port" ] && break
  cleanup; redis_pid="" # lost the race for the port or failed to start: try another
done
if [ -z "$port" ]; then echo "could not start redis-server" >&2; exit 1; fi

export AGENTAUTH_REDIS_ADDR="127.0.0.1:$port"
echo "== $(redis-server --version | cut -d' ' -f1-3) on $AGENTAUTH_REDIS_ADDR"
echo "== redisstore: go vet ./... && go test -race -count=1 ./..."
go vet ./... && go test -race -count=1 ./...
