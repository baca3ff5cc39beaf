#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS…] — run CMD with DATABASE_URL pointing at a PostgreSQL server.
#
# If DATABASE_URL is already set, that server is used as it is. Otherwise a throwaway cluster
# is created in a temporary directory (initdb + pg_ctl, a free port on 127.0.0.1, trust auth)
# and removed when CMD exits, however it exits. With no PostgreSQL server binaries on the
# machine it falls back to a disposable Docker container.
#
# PG_DURABLE=1 keeps PostgreSQL's default durability settings (benchmarks want them); by
# default the throwaway cluster runs with fsync off, which is safe for a cluster that is
# deleted afterwards and makes the test suite much faster.
set -euo pipefail

if [ -n "${DATABASE_URL:-}" ]; then
  exec "$@"
fi

# free_port picks a port nobody listens on, below the kernel's ephemeral range: a port in
# that range can be the local end of some outgoing connection, which a connect test does not
# see but which makes the server's bind fail (seen after a benchmark left thousands).
free_port() {
  local p lo=32768
  read -r lo _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$lo" -gt 11000 ] || lo=32768 # a range starting very low: use the usual one's bound
  for _ in $(seq 1 200); do
    p=$(( 10000 + RANDOM % (lo - 10000) ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2; return 1
}

pg_bin=""
if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
  pg_bin=$(dirname "$(command -v pg_ctl)")
else
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && pg_bin="$d"
  done
fi

port=$(free_port)
tmp=$(mktemp -d -t turnout-pg.XXXXXX)
chmod 755 "$tmp"

settings=(-c listen_addresses=127.0.0.1 -c "unix_socket_directories=$tmp" -c max_connections=300 -c shared_buffers=256MB)
if [ "${PG_DURABLE:-0}" != "1" ]; then
  settings+=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
fi

if [ -n "$pg_bin" ]; then
  # initdb refuses to run as root (CI runs as root): run the server as an unprivileged user.
  as=()
  if [ "$(id -u)" = "0" ]; then
    user=postgres
    if ! id "$user" >/dev/null 2>&1; then
      user=turnout-pg
      id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
    fi
    chown "$user" "$tmp"
    as=(runuser -u "$user" --)
  fi
  cleanup() {
    "${as[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
  }
  trap cleanup EXIT INT TERM
  "${as[@]}" "$pg_bin/initdb" -D "$tmp/data" -U postgres --auth=trust -E UTF8 --no-locale >"$tmp/initdb.log" 2>&1 \
    || { cat "$tmp/initdb.log" >&2; exit 1; }
  # Another process can take the port between the check and the bind: then try another.
  for attempt in 1 2 3 4 5; do
    rm -f "$tmp/server.log"
    if "${as[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
        -o "$(printf '%q ' "${settings[@]}" -c "port=$port")" start >"$tmp/pg_ctl.log" 2>&1; then
      break
    fi
    if [ "$attempt" = 5 ] || ! grep -q "could not create any TCP/IP sockets" "$tmp/server.log"; then
      cat "$tmp/pg_ctl.log" "$tmp/server.log" >&2; exit 1
    fi
    port=$(free_port)
  done
elif command -v docker >/dev/null 2>&1; then
  name="turnout-pg-$$"
  cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
  trap cleanup EXIT INT TERM
  docker run -d --name "$name" -p "127.0.0.1:$port:5432" -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15 \
    postgres -c max_connections=300 $( [ "${PG_DURABLE:-0}" = "1" ] || echo "-c fsync=off -c synchronous_commit=off" ) >/dev/null
  for _ in $(seq 1 60); do
    docker exec "$name" pg_isready -U postgres >/dev/null 2>&1 && break
    sleep 1
  done
else
  echo "with-postgres: need PostgreSQL's server binaries (initdb, pg_ctl) or Docker, or set DATABASE_URL" >&2
  exit 1
fi

export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
"$@"
