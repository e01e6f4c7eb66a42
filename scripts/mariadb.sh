#!/usr/bin/env bash
# A private MariaDB server for the demo (the same recipe as the integration tests):
# row-based binlog with FULL row image and metadata, root without password, 127.0.0.1 only.
#
#   scripts/mariadb.sh start DIR PORT   install the data dir DIR if missing, start the server
#                                       in the background and wait until it answers on PORT
#   scripts/mariadb.sh stop DIR         stop the server whose pid file is DIR/mysqld.pid
#   scripts/mariadb.sh status DIR       exit 0 when it is running
set -euo pipefail

say() { printf '[mariadb] %s\n' "$*"; }
die() { printf '[mariadb] error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '5,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

find_bin() { # NAME DIR... -> path of the first executable NAME on PATH or in DIRs
  local name=$1 dir
  shift
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  for dir in "$@"; do
    if [ -x "$dir/$name" ]; then printf '%s\n' "$dir/$name"; return 0; fi
  done
  return 1
}

find_binaries() {
  MARIADBD=$(find_bin mariadbd /usr/sbin /usr/local/sbin) || MARIADBD=
  INSTALL_DB=$(find_bin mariadb-install-db /usr/bin /usr/local/bin) \
    || INSTALL_DB=$(find_bin mysql_install_db /usr/bin /usr/local/bin) || INSTALL_DB=
}

ensure_installed() {
  find_binaries
  if [ -n "$MARIADBD" ] && [ -n "$INSTALL_DB" ]; then return 0; fi
  local cmd="apt-get update && apt-get install -y --no-install-recommends mariadb-server"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "mariadbd not found; installing it: $cmd"
    # Keep the package's post-install step from starting the system-wide server.
    local policy=/usr/sbin/policy-rc.d created_policy=
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get update -q \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mariadb-server \
      || rc=$?
    if [ -n "$created_policy" ]; then rm -f "$policy"; fi
    [ "$rc" = 0 ] || die "installing mariadb-server failed"
    find_binaries
    if [ -z "$MARIADBD" ] || [ -z "$INSTALL_DB" ]; then
      die "mariadb-server installed but mariadbd or mariadb-install-db not found"
    fi
  else
    die "mariadbd not found. Install it with:  sudo $cmd   (Debian/Ubuntu)"
  fi
}

abs_dir() { mkdir -p "$1" && (cd "$1" && pwd -P); }

running_pid() { # DIR -> prints the server pid and returns 0 when it is running
  local pidfile=$1/mysqld.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  printf '%s\n' "$pid"
}

answers() { # PORT -> 0 when something accepts TCP connections on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd_start() {
  [ $# -eq 2 ] || usage
  local dir port=$2 pid user sock
  [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
  dir=$(abs_dir "$1")
  ensure_installed

  if pid=$(running_pid "$dir"); then
    say "already running (pid $pid) with data dir $dir"
    return 0
  fi
  if answers "$port"; then
    die "port $port is already in use by another program"
  fi

  user=$(id -un)
  if [ ! -d "$dir/mysql" ]; then
    say "installing a new data dir in $dir"
    mkdir -p "$dir/tmp"
    "$INSTALL_DB" --no-defaults --datadir="$dir" --tmpdir="$dir/tmp" --user="$user" \
      --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
      --innodb-log-file-size=8M >"$dir/install.log" 2>&1 \
      || { tail -n 30 "$dir/install.log" >&2; die "mariadb-install-db failed (log: $dir/install.log)"; }
  fi

  # The unix socket path must fit in 107 bytes.
  sock=$dir/mysql.sock
  if [ "${#sock}" -ge 100 ]; then sock=${TMPDIR:-/tmp}/rowhook-mariadb-$port.sock; fi

  say "starting $MARIADBD on 127.0.0.1:$port (data dir $dir, log $dir/error.log)"
  local launcher=()
  if command -v setsid >/dev/null 2>&1; then launcher=(setsid); fi # not killed by Ctrl-C
  mkdir -p "$dir/tmp"
  "${launcher[@]}" nohup "$MARIADBD" --no-defaults --datadir="$dir" --tmpdir="$dir/tmp" --user="$user" \
    --socket="$sock" --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --port="$port" --bind-address=127.0.0.1 --skip-name-resolve --server-id=1 \
    --log-bin="$dir/binlog" --binlog-format=ROW --binlog-row-image=FULL \
    --binlog-row-metadata=FULL --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_unicode_ci --innodb-buffer-pool-size=64M \
    --innodb-flush-log-at-trx-commit=0 --sync-binlog=0 --skip-innodb-doublewrite \
    --innodb-log-file-size=8M \
    --max-connections=500 </dev/null >/dev/null 2>&1 &
  local launched=$!

  local i
  for ((i = 0; i < 300; i++)); do # 30 s
    if answers "$port"; then
      say "ready: mysql://root@127.0.0.1:$port/ (pid $(running_pid "$dir" || echo "$launched"))"
      return 0
    fi
    if ! kill -0 "$launched" 2>/dev/null && ! running_pid "$dir" >/dev/null; then
      tail -n 30 "$dir/error.log" >&2 || true
      die "mariadbd exited during startup (log: $dir/error.log)"
    fi
    sleep 0.1
  done
  tail -n 30 "$dir/error.log" >&2 || true
  die "mariadbd did not answer on port $port within 30 s (log: $dir/error.log)"
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  local dir=$1 pid i
  [ -d "$dir" ] || { say "no data dir $dir: nothing to stop"; return 0; }
  dir=$(abs_dir "$dir")
  if ! pid=$(running_pid "$dir"); then
    say "not running (data dir $dir)"
    return 0
  fi
  say "stopping mariadbd (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do # 30 s
    kill -0 "$pid" 2>/dev/null || { say "stopped"; return 0; }
    sleep 0.1
  done
  say "still running after 30 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_status() {
  [ $# -eq 1 ] || usage
  local pid
  if pid=$(running_pid "$1"); then say "running (pid $pid)"; else say "not running"; return 1; fi
}

[ $# -ge 1 ] || usage
action=$1
shift
case "$action" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  *) usage ;;
esac
