#!/usr/bin/env bash
# A lastframe cluster on this machine, to try one with a single command:
# N nodes, a shared S3 store and HAProxy (deploy/haproxy.cfg) in front of them.
#
#   deploy/local-cluster.sh up N PORT   start N nodes and HAProxy on 127.0.0.1:PORT; returns
#                                       once HAProxy answers with every node in rotation, and
#                                       prints LASTFRAME_TOKEN=<admin token> on its last line
#   deploy/local-cluster.sh status      what runs, with its pid, port and log
#   deploy/local-cluster.sh kill N      SIGKILL node N (node2 or 2: as in X-Lastframe-Node)
#   deploy/local-cluster.sh start N     start node N again (after kill), as it was
#   deploy/local-cluster.sh down        stop everything (idempotent); the state stays
#   deploy/local-cluster.sh config N PORT   print the HAProxy configuration up would write
#
# Environment:
#   LASTFRAME_BIN          the lastframe binary (default: build/src/app/lastframe of this
#                          checkout: `make build` first)
#   LASTFRAME_CLUSTER_DIR  the state directory (default: ./lastframe-cluster)
#   LASTFRAME_AUTH=off     run the nodes open (no keys; LASTFRAME_TOKEN= is then empty)
#   HAPROXY                the haproxy binary (default: haproxy, from scripts/install-deps.sh)
#   LASTFRAME_CLUSTER_CONFIG  a TOML file every node reads (--config): its [[streams]] are
#                          the cluster's pulled cameras, each pulled by the node HAProxy
#                          routes it to (--pull-route, README "More than one machine")
#   Other LASTFRAME_* variables (LASTFRAME_RETENTION, ...) reach every node as usual.
#
# The shared store is one more lastframe process, used only for its embedded S3
# store (bucket "lastframe", path-style, its own key pair) and not behind HAProxy:
# the nodes put snapshots under s3://lastframe/snapshots/ (--store s3://lastframe) and completed
# fragments under s3://lastframe/archive (--archive), and signed image URLs point
# at it. Killing a node never touches it.
#
# State (LASTFRAME_CLUSTER_DIR):
#   cluster.env            N, PORT and every process's port (written by up)
#   credentials            the cluster's S3 / Kinesis Video key pair (0600): the store's,
#                          and every node's --access-key/--secret-key, so SigV4 works on all
#   keys.json              the shared API keys file (--keys-file of every node)
#   initial-keys.txt       the admin and viewer tokens made at the first up (0600)
#   haproxy.cfg            deploy/haproxy.cfg's routing with this cluster's bind and servers
#   haproxy.sock           HAProxy's admin socket (`echo 'show stat' | socat - UNIX:...`)
#   NAME/                  each process's --data-dir (store, node1, node2, ...)
#   NAME.sh NAME.pid NAME.log   how NAME is started, its pid, its output (haproxy too)
# `down` keeps it all (a later `up` reuses keys, credentials and data); remove the
# directory to start afresh.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
bin="${LASTFRAME_BIN:-$root/build/src/app/lastframe}"
dir="${LASTFRAME_CLUSTER_DIR:-./lastframe-cluster}"
haproxy="${HAPROXY:-haproxy}"
auth="${LASTFRAME_AUTH:-on}"
deadline_s=60 # for each wait

die() {
  echo "local-cluster: $*" >&2
  exit 1
}
say() { echo "local-cluster: $*" >&2; }

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The pid in NAME.pid, if that process still runs (and is ours: its command line
# names lastframe or haproxy, so a reused pid is never taken for it).
alive_pid() {
  local f="$dir/$1.pid" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -e lastframe -e haproxy || return 1
  echo "$pid"
}

# Whether PID runs (a zombie, killed and not yet reaped by init, does not).
running() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ "$state" != Z ]
}

# Every process name of the state directory: store, node1.., haproxy.
names() {
  local f
  for f in "$dir"/*.sh; do
    [ -e "$f" ] || continue
    basename "$f" .sh
  done
}

# N free loopback TCP ports, distinct (held open together while picked).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# Polls until `$@` succeeds, every 0.1 s, for at most deadline_s.
wait_for() {
  local end=$((SECONDS + deadline_s))
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.1
  done
}

healthy() { curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null; }

# Starts NAME from NAME.sh in its own session, output to NAME.log.
launch() {
  local name="$1"
  : >>"$dir/$name.log"
  echo "---- $(date -u +%Y-%m-%dT%H:%M:%SZ) start" >>"$dir/$name.log"
  setsid bash "$dir/$name.sh" >>"$dir/$name.log" 2>&1 </dev/null &
  # NAME.sh writes its own pid (the one it execs as) before it execs.
  local end=$((SECONDS + 5))
  until [ -s "$dir/$name.pid" ] && [ "$(cat "$dir/$name.pid")" != "" ]; do
    [ "$SECONDS" -lt "$end" ] || die "$name did not start: see $dir/$name.log"
    sleep 0.05
  done
}

# Waits for NAME on PORT to answer /healthz, or fails with the end of its log.
await_healthy() {
  local name="$1" port="$2"
  if ! wait_for healthy_or_dead "$name" "$port"; then
    die "$name (127.0.0.1:$port) did not answer /healthz within ${deadline_s}s: see $dir/$name.log"
  fi
  if ! alive_pid "$name" >/dev/null; then
    tail -n 20 "$dir/$name.log" >&2 || true
    die "$name exited: see $dir/$name.log"
  fi
}
healthy_or_dead() { healthy "$2" || ! alive_pid "$1" >/dev/null; }

# Writes NAME.sh: exports, then exec of the command, recording its pid first.
write_launcher() {
  local name="$1"
  shift
  {
    echo "#!/usr/bin/env bash"
    echo "# written by deploy/local-cluster.sh up: starts $name"
    echo "set -e"
    echo "cd $(printf %q "$PWD")"
    # The secrets go in the environment, not in argv (ps shows argv to everyone).
    echo "export LASTFRAME_ACCESS_KEY=$(printf %q "$access_key")"
    echo "export LASTFRAME_SECRET_KEY=$(printf %q "$secret_key")"
    echo "export LASTFRAME_S3_ACCESS_KEY=$(printf %q "$access_key")"
    echo "export LASTFRAME_S3_SECRET_KEY=$(printf %q "$secret_key")"
    echo "echo \$\$ >$(printf %q "$dir/$name.pid")"
    printf 'exec'
    printf ' %q' "$@"
    echo
  } >"$dir/$name.sh"
  chmod 0700 "$dir/$name.sh"
}

# KEY's value in cluster.env.
setting() { awk -F= -v k="$1" '$1 == k { print $2 }' "$dir/cluster.env"; }

node_name() {
  local n="$1"
  n="${n#node}"
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "no node '$1' (node1, node2, ... or 1, 2, ...)"
  [ -f "$dir/node$n.sh" ] || die "no node$n in $dir"
  echo "node$n"
}

cmd_up() {
  [ $# -eq 2 ] || usage
  local n="$1" port="$2"
  if ! [[ "$n" =~ ^[1-9][0-9]?$ ]] || [ "$n" -gt 64 ]; then die "N must be 1 to 64, not '$n'"; fi
  if ! [[ "$port" =~ ^[1-9][0-9]{0,4}$ ]] || [ "$port" -gt 65535 ]; then
    die "PORT must be a TCP port, not '$port'"
  fi
  [ -x "$bin" ] || die "no lastframe binary at $bin: run 'make build' first, or set LASTFRAME_BIN"
  command -v "$haproxy" >/dev/null || die "no haproxy: run scripts/install-deps.sh (or apt-get install haproxy)"
  command -v curl >/dev/null || die "no curl: run scripts/install-deps.sh"
  case "$auth" in on | off) ;; *) die "LASTFRAME_AUTH must be on or off, not '$auth'" ;; esac

  mkdir -p "$dir"
  chmod 0700 "$dir"
  dir="$(cd "$dir" && pwd)"
  local running=()
  local name
  for name in $(names); do
    if alive_pid "$name" >/dev/null; then running+=("$name"); fi
  done
  if [ ${#running[@]} -gt 0 ]; then
    die "already up in $dir (${running[*]} running): run '$0 down' first"
  fi
  if curl -s -m 1 -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
    die "something already answers on 127.0.0.1:$port: choose another PORT"
  fi
  rm -f "$dir"/*.sh "$dir"/*.pid # the last run's launchers (its N may differ)

  # The cluster's key pair: the store's S3 credentials and every node's own
  # (Kinesis Video SigV4 must verify on whichever node a request lands on).
  umask 077
  if [ ! -s "$dir/credentials" ]; then
    {
      echo "access_key lfcluster$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
      echo "secret_key $(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    } >"$dir/credentials"
  fi
  access_key="$(awk '$1 == "access_key" { print $2 }' "$dir/credentials")"
  secret_key="$(awk '$1 == "secret_key" { print $2 }' "$dir/credentials")"
  if [ -z "$access_key" ] || [ -z "$secret_key" ]; then die "$dir/credentials is damaged: remove it"; fi

  local auth_flags=(--auth off)
  if [ "$auth" = on ]; then
    # The shared keys file and its first admin and viewer keys (made once).
    local out
    out="$("$bin" keys init --data-dir "$dir" --keys-file "$dir/keys.json" 2>&1)" ||
      die "lastframe keys init: $out"
    auth_flags=(--auth on --keys-file "$dir/keys.json")
  fi

  # Completed fragments also go to the shared store: PERSISTED means there.
  local archive_flags=(--archive s3://lastframe/archive)

  # shellcheck disable=SC2207 # the ports are numbers
  local ports=($(free_ports $((n + 1))))
  local store_port="${ports[0]}"
  {
    echo "N=$n"
    echo "PORT=$port"
    echo "STORE_PORT=$store_port"
    local k
    for ((k = 1; k <= n; k++)); do echo "NODE${k}_PORT=${ports[$k]}"; done
  } >"$dir/cluster.env"

  # The shared store: a lastframe used only for its embedded S3 store. It keeps
  # objects a day (snapshots' URLs live at most that long to viewers; archived
  # fragments as long) and at most 4 GiB, oldest out first.
  write_launcher store "$bin" serve --listen "127.0.0.1:$store_port" --data-dir "$dir/store" \
    --node-id store --bucket lastframe --objects-max-age 86400 --objects-max-size 4GiB \
    "${auth_flags[@]}"
  launch store

  # Pulled cameras: one list for every node; each node asks HAProxy which are its own.
  local config_flags=()
  if [ -n "${LASTFRAME_CLUSTER_CONFIG:-}" ]; then
    [ -r "$LASTFRAME_CLUSTER_CONFIG" ] || die "LASTFRAME_CLUSTER_CONFIG: cannot read $LASTFRAME_CLUSTER_CONFIG"
    config_flags=(--config "$(realpath "$LASTFRAME_CLUSTER_CONFIG")")
  fi
  local route_flags=(--pull-route "http://127.0.0.1:$port")

  local store_url="http://127.0.0.1:$store_port"
  local public="http://127.0.0.1:$port"
  local k j peers
  for ((k = 1; k <= n; k++)); do
    peers=""
    for ((j = 1; j <= n; j++)); do
      [ "$j" -eq "$k" ] || peers="${peers:+$peers,}http://127.0.0.1:${ports[$j]}"
    done
    local peer_flags=()
    [ -z "$peers" ] || peer_flags=(--peers "$peers")
    write_launcher "node$k" "$bin" serve --listen "127.0.0.1:${ports[$k]}" \
      --data-dir "$dir/node$k" --node-id "node$k" --public-url "$public" "${peer_flags[@]}" \
      --store s3://lastframe "${archive_flags[@]}" --s3-endpoint "$store_url" \
      --s3-addressing path --s3-region us-east-1 --unsigned-putmedia "${auth_flags[@]}" \
      "${route_flags[@]}" "${config_flags[@]}"
  done

  local node_ports=()
  for ((k = 1; k <= n; k++)); do node_ports+=("${ports[$k]}"); done
  haproxy_config "$port" "${node_ports[@]}" >"$dir/haproxy.cfg"
  grep -q "bind 127.0.0.1:$port" "$dir/haproxy.cfg" || die "deploy/haproxy.cfg has no '# bind' line"
  "$haproxy" -c -q -f "$dir/haproxy.cfg" || die "$dir/haproxy.cfg does not check (haproxy -c)"
  write_launcher haproxy "$haproxy" -db -f "$dir/haproxy.cfg"

  await_healthy store "$store_port"
  for ((k = 1; k <= n; k++)); do launch "node$k"; done
  for ((k = 1; k <= n; k++)); do await_healthy "node$k" "${ports[$k]}"; done
  launch haproxy

  # Until HAProxy answers and has every node in rotation: /healthz names no
  # stream, so it goes round the healthy nodes; N answers in a row name all N.
  if ! wait_for all_in_rotation "$port" "$n"; then
    die "HAProxy (127.0.0.1:$port) did not bring all $n nodes into rotation within ${deadline_s}s: see $dir/haproxy.log"
  fi

  echo "lastframe cluster: $n nodes behind HAProxy on $public, shared S3 store $store_url (bucket lastframe)"
  echo "  state and logs: $dir   stop: $0 down   kill a node: $0 kill 2"
  local token=""
  if [ "$auth" = on ]; then
    token="$(awk '$1 == "admin" { print $2 }' "$dir/initial-keys.txt" 2>/dev/null || true)"
    [ -n "$token" ] || say "no admin key in $dir/initial-keys.txt (made by an older run?): '$bin keys create --keys-file $dir/keys.json --role admin'"
    echo "  try: curl -s -H \"Authorization: Bearer \$LASTFRAME_TOKEN\" $public/v1/streams"
  else
    echo "  open (LASTFRAME_AUTH=off): curl -s $public/v1/streams"
  fi
  echo "LASTFRAME_TOKEN=$token"
}

# HAProxy's configuration for nodes on 127.0.0.1:PORT1.. behind 127.0.0.1:PORT:
# deploy/haproxy.cfg below its global section, with this cluster's bind address
# and servers, logging to its output.
haproxy_config() {
  local port="$1" servers="" k=0 p
  shift
  for p in "$@"; do
    k=$((k + 1))
    servers+="    server node$k 127.0.0.1:$p id $k"$'\n'
  done
  echo "# written by deploy/local-cluster.sh from deploy/haproxy.cfg"
  echo "global"
  echo "    log stdout format raw local0"
  echo "    stats socket $dir/haproxy.sock mode 600 level admin"
  echo "    maxconn 4096"
  echo
  awk -v bind="    bind 127.0.0.1:$port" -v servers="$servers" '
    /^# ---- local-cluster.sh uses everything below this line ----/ { on = 1; next }
    !on { next }
    /^ *# bind$/ { print; getline; print bind; next }
    /^ *server / { if (!done) printf "%s", servers; done = 1; next }
    { print }' "$here/haproxy.cfg"
}

# `config N PORT`: the HAProxy configuration `up N PORT` would write (with
# stand-in node ports PORT+1..PORT+N), for scripts/check-deploy.sh.
cmd_config() {
  [ $# -eq 2 ] || usage
  local n="$1" port="$2" k ports=()
  dir="$(realpath -m "$dir")"
  for ((k = 1; k <= n; k++)); do ports+=($((port + k))); done
  haproxy_config "$port" "${ports[@]}"
}

all_in_rotation() {
  local port="$1" n="$2" i seen=" " node
  healthy "$port" || return 1
  for ((i = 0; i < n; i++)); do
    node="$(curl -fsS -m 1 -o /dev/null -D - "http://127.0.0.1:$port/healthz" 2>/dev/null |
      tr -d '\r' | awk -F': ' 'tolower($1) == "x-lastframe-node" { print $2 }')" || return 1
    [ -n "$node" ] || return 1
    [[ "$seen" == *" $node "* ]] || seen+="$node "
  done
  [ "$(wc -w <<<"$seen")" -eq "$n" ]
}

# SIGTERM, then SIGKILL after 10 s; waits for the process to be gone.
stop() {
  local name="$1" pid
  pid="$(alive_pid "$name")" || {
    rm -f "$dir/$name.pid"
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  local end=$((SECONDS + 10))
  while running "$pid" && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
  if running "$pid"; then
    say "$name (pid $pid) did not stop within 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    end=$((SECONDS + 5))
    while running "$pid" && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
  fi
  rm -f "$dir/$name.pid"
  echo "stopped $name (pid $pid)"
}

cmd_down() {
  [ $# -eq 0 ] || usage
  [ -d "$dir" ] || {
    echo "local-cluster: nothing in $dir"
    return 0
  }
  local name
  # HAProxy first (no new requests), the nodes, the store last (nodes flush to it).
  stop haproxy
  for name in $(names); do
    case "$name" in node*) stop "$name" ;; esac
  done
  stop store
}

cmd_kill() {
  [ $# -eq 1 ] || usage
  local name pid
  name="$(node_name "$1")"
  pid="$(alive_pid "$name")" || die "$name is not running"
  kill -KILL "$pid"
  local end=$((SECONDS + 5))
  while running "$pid" && [ "$SECONDS" -lt "$end" ]; do sleep 0.05; done
  rm -f "$dir/$name.pid"
  echo "killed $name (pid $pid, SIGKILL)"
}

cmd_start() {
  [ $# -eq 1 ] || usage
  local name port
  name="$(node_name "$1")"
  ! alive_pid "$name" >/dev/null || die "$name is running already"
  port="$(setting "NODE${name#node}_PORT")"
  launch "$name"
  await_healthy "$name" "$port"
  echo "started $name on 127.0.0.1:$port (HAProxy takes it back after two good checks, ~1 s)"
}

cmd_status() {
  [ $# -eq 0 ] || usage
  [ -f "$dir/cluster.env" ] || die "no cluster in $dir"
  local name pid port state
  for name in haproxy store $(names | grep '^node' | sort -V); do
    case "$name" in
      haproxy) port="$(setting PORT)" ;;
      store) port="$(setting STORE_PORT)" ;;
      *) port="$(setting "NODE${name#node}_PORT")" ;;
    esac
    if pid="$(alive_pid "$name")"; then state="running (pid $pid)"; else state="stopped"; fi
    printf '%-8s 127.0.0.1:%-5s %-22s %s\n' "$name" "$port" "$state" "$dir/$name.log"
  done
}

[ $# -ge 1 ] || usage
command="$1"
shift
case "$command" in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  kill) cmd_kill "$@" ;;
  start) cmd_start "$@" ;;
  status) cmd_status "$@" ;;
  config) cmd_config "$@" ;;
  *) usage ;;
esac
