#!/usr/bin/env bash
# `make demo`: rowhook end to end on this machine, in ./.demo (removed and recreated each run).
#
#  1. builds the release binary (the library and dependencies, then the binary's link step)
#  2. starts a private MariaDB (row-based binlog) on a free port and loads schema/helpdesk.sql
#     into the database `helpdesk`
#  3. runs `rowhook migrate`, starts `rowhook listen` (a receiver that verifies signatures and
#     prints each delivery), registers a webhook for it, starts `rowhook run`
#  4. writes sample rows like the helpdesk application would and shows the deliveries
#  5. prints the admin API's address, its token and curl lines to try (register another webhook)
#  6. waits until Ctrl-C, then stops everything
#
# Needs the Rust toolchain; MariaDB and curl are installed from Debian's packages when run as
# root, otherwise the demo prints the command to run.
#
# DEMO_NONINTERACTIVE=1: instead of waiting, runs the printed curl line (registers a second
# webhook through the admin API) and a new row, and exits non-zero unless all 8 deliveries were
# delivered and verified by the receiver.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)
DEMO=$ROOT/.demo
DBDIR=$DEMO/mysql
BIN=$ROOT/target/release/rowhook
CONFIG=config/rowhook.toml
EXPECTED_DELIVERIES=6
NONINTERACTIVE=${DEMO_NONINTERACTIVE:-0}

if [ -t 1 ]; then BOLD=$'\e[1m' DIM=$'\e[2m' RESET=$'\e[0m'; else BOLD='' DIM='' RESET=''; fi
step() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$RESET"; }
info() { printf '    %s\n' "$*"; }
die() { printf '\n%sdemo failed:%s %s\n' "$BOLD" "$RESET" "$*" >&2; exit 1; }

ROWHOOK_PID=
LISTEN_PID=
TAIL_PID=
DB_STARTED=
# shellcheck disable=SC2317 # invoked by the traps below
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$TAIL_PID" ]; then kill "$TAIL_PID" 2>/dev/null || true; fi
  if [ -n "$ROWHOOK_PID$LISTEN_PID$DB_STARTED" ]; then step "Stopping the demo"; fi
  local pid
  for pid in $ROWHOOK_PID $LISTEN_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "$ROWHOOK_PID" ]; then info "rowhook run stopped"; fi
  if [ -n "$LISTEN_PID" ]; then info "rowhook listen stopped"; fi
  rm -f "$DEMO/rowhook.pid" "$DEMO/listen.pid"
  if [ -n "$DB_STARTED" ]; then bash scripts/mariadb.sh stop "$DBDIR" | sed 's/^/    /' || true; fi
  if [ -n "$ROWHOOK_PID$LISTEN_PID$DB_STARTED" ] && [ -d "$DEMO" ]; then
    info "logs kept in .demo/ (make clean-demo removes it)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found${2:+: $2}"; }

# need_pkg COMMAND PACKAGE: installs PACKAGE from Debian's packages when COMMAND is missing and we
# are root with apt-get; otherwise says the exact command to run.
need_pkg() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local cmd="apt-get update && apt-get install -y --no-install-recommends $2"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    info "$1 not found; installing it: $cmd"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" </dev/null >/dev/null \
      || die "installing $2 failed; run: sudo $cmd"
  else
    die "$1 not found. Install it with:  sudo $cmd   (Debian/Ubuntu)"
  fi
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

USED_PORTS=" "
PORT='' RPORT='' HPORT=''
free_port() { # VAR: sets VAR to a port nothing listens on, distinct from the ones picked before
  local port i
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 40000))
    case "$USED_PORTS" in *" $port "*) continue ;; esac
    if ! answers "$port"; then
      USED_PORTS="$USED_PORTS$port "
      printf -v "$1" '%s' "$port"
      return 0
    fi
  done
  die "no free TCP port found"
}

MARIADB_CLIENT=$(command -v mariadb || command -v mysql || true)
sql() { # runs the mariadb client against the demo server; extra args go to the client
  "$MARIADB_CLIENT" --no-defaults --default-character-set=utf8mb4 -h127.0.0.1 -P "$PORT" -uroot "$@"
}
sql_value() { sql -N -B helpdesk -e "$1"; } # prints the result of a one-value query
show_sql() { info "${DIM}$1${RESET}"; }

# ---------------------------------------------------------------------------------------------
step "Checking the tools the demo needs"
CARGO=${CARGO:-cargo}
need "$CARGO" "install Rust from https://rustup.rs (curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh)"
need_pkg curl curl
need_pkg base64 coreutils
[ -f "$CONFIG" ] || die "$CONFIG not found (run the demo from a checkout of rowhook)"
[ -f schema/helpdesk.sql ] || die "schema/helpdesk.sql not found"
info "cargo, curl, base64: ok (MariaDB is checked by scripts/mariadb.sh)"

# ---------------------------------------------------------------------------------------------
step "Building the release binary (cargo build --release --locked)"
if [ -x "$BIN" ]; then
  info "rebuilding what changed since the last build"
else
  info "the first build compiles about 260 crates: several minutes (cargo shows its progress below)"
fi
# In two steps, so that the last, silent one is announced: the library and every dependency
# first, then the binary itself, which links with link-time optimisation across all of them.
"$CARGO" build --release --locked --lib
if [ ! -x "$BIN" ] || [ -n "$(find src migrations Cargo.toml Cargo.lock -newer "$BIN" -print -quit)" ]; then
  info "linking the binary with link-time optimisation across every crate: about 2 to 4 minutes"
  info "on 2 cores, with no output until it ends"
fi
"$CARGO" build --release --locked
[ -x "$BIN" ] || die "$BIN was not built"

# ---------------------------------------------------------------------------------------------
step "Starting a private MariaDB in .demo/mysql"
if [ -d "$DBDIR" ]; then
  bash scripts/mariadb.sh stop "$DBDIR" | sed 's/^/    /'
fi
for pidfile in "$DEMO/rowhook.pid" "$DEMO/listen.pid"; do # leftovers of an earlier demo
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then kill "$(cat "$pidfile")" || true; fi
done
rm -rf "$DEMO"
mkdir -p "$DEMO"
free_port PORT
DB_STARTED=1
bash scripts/mariadb.sh start "$DBDIR" "$PORT" | sed 's/^/    /'
MARIADB_CLIENT=$(command -v mariadb || command -v mysql || true) # mariadb.sh may have installed it
[ -n "$MARIADB_CLIENT" ] || die "the mariadb client was not found (apt-get install mariadb-client)"
SOURCE_URL="mysql://root@127.0.0.1:$PORT/helpdesk"

# ---------------------------------------------------------------------------------------------
step "Creating the application database 'helpdesk' from schema/helpdesk.sql"
sql -e "CREATE DATABASE helpdesk CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
sql helpdesk <schema/helpdesk.sql
info "tables: $(sql_value "SHOW TABLES" | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------------
step "Creating rowhook's own tables (rowhook migrate)"
ROWHOOK__SOURCE__URL=$SOURCE_URL "$BIN" migrate --config "$CONFIG" 2>&1 | sed 's/^/    /'

# ---------------------------------------------------------------------------------------------
free_port RPORT
SECRET="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
step "Starting a webhook receiver (rowhook listen on 127.0.0.1:$RPORT)"
ROWHOOK_LISTEN_SECRET=$SECRET "$BIN" listen --listen "127.0.0.1:$RPORT" >"$DEMO/listen.log" 2>&1 &
LISTEN_PID=$!
echo "$LISTEN_PID" >"$DEMO/listen.pid"
for _ in $(seq 100); do
  answers "$RPORT" && break
  kill -0 "$LISTEN_PID" 2>/dev/null || { cat "$DEMO/listen.log" >&2; die "rowhook listen exited"; }
  sleep 0.1
done
answers "$RPORT" || die "rowhook listen does not answer on 127.0.0.1:$RPORT (log: .demo/listen.log)"
info "listening; it verifies each delivery's signature with the secret and prints it"

# ---------------------------------------------------------------------------------------------
step "Registering a webhook for the six events"
REGISTER="INSERT INTO webhooks (url, events, secret, is_active) VALUES ('http://127.0.0.1:$RPORT/webhook', JSON_ARRAY('thread.created','thread.updated','thread.deleted','email.received','email.sent','note.added'), '$SECRET', 1)"
show_sql "${REGISTER/"$SECRET"/whsec_…}"
sql helpdesk -e "$REGISTER"

# ---------------------------------------------------------------------------------------------
free_port HPORT
TOKEN=demo-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
step "Starting rowhook (rowhook run; admin API on 127.0.0.1:$HPORT, log .demo/rowhook.log)"
ROWHOOK__SOURCE__URL=$SOURCE_URL \
  ROWHOOK__HTTP__LISTEN=127.0.0.1:$HPORT \
  ROWHOOK__DELIVERY__ALLOW_PRIVATE_TARGETS=true \
  ROWHOOK__ADMIN__TOKEN=$TOKEN \
  "$BIN" run --config "$CONFIG" >"$DEMO/rowhook.log" 2>&1 &
ROWHOOK_PID=$!
echo "$ROWHOOK_PID" >"$DEMO/rowhook.pid"
healthy=
for _ in $(seq 300); do # 30 s
  if curl -fsS "http://127.0.0.1:$HPORT/healthz" >/dev/null 2>&1; then healthy=1; break; fi
  if ! kill -0 "$ROWHOOK_PID" 2>/dev/null; then
    tail -n 30 "$DEMO/rowhook.log" >&2
    die "rowhook run exited (log: .demo/rowhook.log)"
  fi
  sleep 0.1
done
if [ -z "$healthy" ]; then
  tail -n 30 "$DEMO/rowhook.log" >&2
  die "rowhook did not answer http://127.0.0.1:$HPORT/healthz within 30 s"
fi
info "healthy: $(curl -fsS "http://127.0.0.1:$HPORT/healthz")"

# ---------------------------------------------------------------------------------------------
step "Writing rows like the helpdesk application would"
write() { # DESCRIPTION SQL -> runs SQL, prints what it did
  info "$1"
  show_sql "  $2"
  sql helpdesk -e "$2"
}
info "a new thread (thread.created)"
show_sql "  INSERT INTO threads (subject) VALUES ('Printer on fire')"
THREAD_ID=$(sql_value "INSERT INTO threads (subject) VALUES ('Printer on fire'); SELECT LAST_INSERT_ID()")

write "an incoming email on it (email.received)" \
  "INSERT INTO emails (thread_id, direction, message_id, subject, from_address, to_addresses, body_text, received_at) VALUES ($THREAD_ID, 'incoming', '<m1@example.net>', 'Printer on fire', 'alice@example.net', JSON_ARRAY('support@example.com'), 'The printer on floor 3 is smoking.', NOW())"

info "an outgoing reply, saved as a draft (sent_at NULL: no event yet)"
show_sql "  INSERT INTO emails (..., direction, sent_at) VALUES (..., 'outgoing', NULL)"
EMAIL_ID=$(sql_value "INSERT INTO emails (thread_id, direction, subject, from_address, to_addresses, body_text, sent_at) VALUES ($THREAD_ID, 'outgoing', 'Re: Printer on fire', 'support@example.com', JSON_ARRAY('alice@example.net'), 'Please step away from the printer.', NULL); SELECT LAST_INSERT_ID()")

write "... then sent (email.sent)" \
  "UPDATE emails SET sent_at = NOW() WHERE id = $EMAIL_ID"
write "an internal note (note.added)" \
  "INSERT INTO notes (thread_id, user_id, content) VALUES ($THREAD_ID, 7, 'Called facilities.')"
write "the thread goes to pending (thread.updated)" \
  "UPDATE threads SET status = 'pending' WHERE id = $THREAD_ID"
write "the thread is deleted (thread.deleted)" \
  "DELETE FROM threads WHERE id = $THREAD_ID"

# ---------------------------------------------------------------------------------------------
step "Waiting for the deliveries"
delivered=0
for _ in $(seq 40); do # up to 20 s
  delivered=$(sql_value "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'" 2>/dev/null || echo 0)
  [ "${delivered:-0}" -ge "$EXPECTED_DELIVERIES" ] && break
  sleep 0.5
done
sql helpdesk -t -e "SELECT * FROM (SELECT id, event_type, status, attempts, response_status FROM webhook_deliveries ORDER BY id DESC LIMIT 20) AS last ORDER BY id"
info "$delivered delivered (expected $EXPECTED_DELIVERIES)"

step "What the receiver printed (.demo/listen.log)"
sed 's/^/    /' "$DEMO/listen.log"

if [ "$delivered" -lt "$EXPECTED_DELIVERIES" ]; then
  printf '\nlast lines of .demo/rowhook.log:\n' >&2
  tail -n 30 "$DEMO/rowhook.log" >&2
  die "only $delivered of $EXPECTED_DELIVERIES deliveries have status 'delivered'"
fi

# ---------------------------------------------------------------------------------------------
API=http://127.0.0.1:$HPORT
ANOTHER_URL=http://127.0.0.1:$RPORT/another
REGISTER_JSON="{\"url\": \"$ANOTHER_URL\", \"events\": [\"*\"], \"secret\": \"$SECRET\"}"
step "Try it"
cat <<INFO
    console       $API/console   (in a browser; sign in with the token below)
    admin API     $API/api/webhooks
    token         $TOKEN
                    export TOKEN=$TOKEN
    list webhooks   curl -H "Authorization: Bearer \$TOKEN" $API/api/webhooks
    register another webhook (the secret is the demo's, so rowhook listen verifies it too;
    leave "secret" out and rowhook generates one and shows it once):
                    curl -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
                      -d '$REGISTER_JSON' \\
                      $API/api/webhooks
    add a row       $MARIADB_CLIENT --no-defaults -h127.0.0.1 -P $PORT -uroot helpdesk \\
                      -e "INSERT INTO threads (subject) VALUES ('Another one')"
    metrics         curl $API/metrics
    health          curl $API/healthz   curl $API/readyz
    logs            .demo/rowhook.log (rowhook), .demo/listen.log (the receiver)
    the CLI         target/release/rowhook --help   (make install puts rowhook on your PATH)
    MariaDB         mysql://root@127.0.0.1:$PORT/helpdesk   (log .demo/mysql/error.log)
INFO

if [ "$NONINTERACTIVE" = 1 ]; then
  # Run what was just printed: the curl line registers a webhook, a new row reaches both.
  step "Checking the lines above"
  status=$(curl -sS -o "$DEMO/register.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d "$REGISTER_JSON" "$API/api/webhooks") || status=000
  [ "$status" = 201 ] || die "registering a webhook answered $status: $(cat "$DEMO/register.json" 2>/dev/null)"
  answer=$(tr -d '\n' <"$DEMO/register.json")
  answer=${answer//"$SECRET"/whsec_…}
  info "POST /api/webhooks: 201 ${answer:0:160}"
  sleep 1.5 # rowhook picks up the new webhook within a second
  sql helpdesk -e "INSERT INTO threads (subject) VALUES ('Another one')"
  want=$((EXPECTED_DELIVERIES + 2))
  for _ in $(seq 40); do
    delivered=$(sql_value "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'" 2>/dev/null || echo 0)
    [ "${delivered:-0}" -ge "$want" ] && break
    sleep 0.5
  done
  [ "$delivered" -ge "$want" ] || die "after the new row, $delivered of $want deliveries have status 'delivered' (log: .demo/rowhook.log)"
  verified=$(grep -c -- '^--- thread.created .*signatures OK' "$DEMO/listen.log" || true)
  [ "$verified" -ge 3 ] || die "rowhook listen verified $verified thread.created deliveries, expected 3 (.demo/listen.log)"
  info "the new thread reached both webhooks: $delivered deliveries delivered"
  console=$(curl -sS -o /dev/null -w '%{http_code}' "$API/console/login") || console=000
  [ "$console" = 200 ] || die "the console's sign-in page answered $console (log: .demo/rowhook.log)"
  info "GET /console/login: 200"
  step "Demo OK"
  exit 0
fi

step "The demo is running: new deliveries are shown below. Ctrl-C stops rowhook, the receiver and MariaDB."
printf '\n'
tail -n 0 -f "$DEMO/listen.log" &
TAIL_PID=$!
wait "$ROWHOOK_PID" || true
die "rowhook run exited by itself (log: .demo/rowhook.log)"
