# Shared by the benchmark scripts (sourced, not run): a noops server on a
# data folder of its own, stopped with its sandboxes on exit, and a private
# /etc/hosts for tools that must resolve the apps' names.
# The caller sets: work (a temporary folder), out (results), log (the
# server's log file).

server_pid=""
data=$work/data

fail() { # message [log file]
  echo "bench: $1" >&2
  [ -z "${2:-}" ] || tail -n 40 "$2" >&2
  exit 1
}

# start_server DOMAIN PORT [flags...]: starts `noops server` on $data,
# without the flood rule (the load comes from one address).
start_server() {
  local domain=$1 port=$2
  shift 2
  mkdir -p "$data"
  bin/noops server --data "$data" --domain "$domain" --https "127.0.0.1:$port" --http off \
    --stop-sandboxes --flood -1 "$@" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 300); do
    [ -S "$data/api.sock" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited" "$log"
    sleep 0.1
  done
  fail "the server did not start in 30 s" "$log"
}

noops() { bin/noops --data "$data" "$@"; }

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 600); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "bench: the server did not stop in 60 s; killing it" >&2
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  # --stop-sandboxes stops every sandbox; remove any that a crash left.
  local r ids
  while read -r r; do
    ids=$(runc --root "$r" list -q 2>/dev/null || true)
    for id in $ids; do
      echo "bench: removing sandbox $id the server left" >&2
      runc --root "$r" delete --force "$id" >/dev/null 2>&1 || true
    done
  done < <(find "$data" -maxdepth 4 -type d -name .runc 2>/dev/null)
}

# cleanup stops the server and removes $work; scripts call it from their
# EXIT trap.
cleanup() {
  stop_server
  if grep -q " $work/" /proc/self/mounts; then
    echo "bench: mounts left under $work:" >&2
    grep " $work/" /proc/self/mounts | awk '{print "  " $2}' >&2
  fi
  rm -rf --one-file-system "$work"
}

# in_hosts runs a command in a private mount namespace whose /etc/hosts is
# $work/hosts; the system's file is untouched.
in_hosts() { unshare --mount sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$work/hosts" "$@"; }
