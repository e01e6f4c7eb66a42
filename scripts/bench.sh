#!/usr/bin/env bash
# `make bench`: rowhook's speed beside references measured in the same run.
#
# Starts a private MariaDB (scripts/mariadb.sh, data dir target/bench/mysql, removed first),
# installs the peer (python-mysql-replication) into a venv under target/bench/venv when missing,
# then runs the benchmark binary (benches/rowhook.rs, release build), which generates the
# workloads, runs every scenario several times, prints the table and writes it between the
# markers of docs/benchmarks.md. The server is stopped at the end, whatever happens.
#
#   BENCH_RUNS=5      runs per figure (medians; the peer and the enqueue use at most 3)
#   BENCH_ROWS=200000 rows per workload
#   BENCH_PORT=...    the server's port (default: a free one)
#   BENCH_NO_PEER=1   skip python-mysql-replication
#   BENCH_ONLY=e2e    only these scenarios (comma-separated: decode, skip, peer, enqueue, e2e;
#                     latency or fanout for one part of e2e); the table is printed, and
#                     docs/benchmarks.md is left alone (it holds complete runs only)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[bench] %s\n' "$*" >&2; }

WORK=target/bench
DATADIR=$WORK/mysql
PEER_VERSION=1.0.17
mkdir -p "$WORK"

port=${BENCH_PORT:-}
if [ -z "$port" ]; then
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi

python_args=()
if [ -z "${BENCH_NO_PEER:-}" ]; then
  venv=$WORK/venv
  if ! "$venv/bin/python" -c 'import pymysqlreplication' 2>/dev/null; then
    say "installing python-mysql-replication $PEER_VERSION into $venv"
    if python3 -m venv "$venv" && "$venv/bin/pip" install -q "mysql-replication==$PEER_VERSION"; then
      :
    else
      say "could not install python-mysql-replication (pip, network?): the peer is left out"
    fi
  fi
  if "$venv/bin/python" -c 'import pymysqlreplication' 2>/dev/null; then
    python_args=(--python "$venv/bin/python")
  fi
fi

say "building rowhook and the benchmark (release)"
cargo build --release --locked --bin rowhook
cargo bench --locked --bench rowhook --no-run

if [ -f "$DATADIR/mysqld.pid" ]; then bash scripts/mariadb.sh stop "$DATADIR" || true; fi
rm -rf "$DATADIR"
bash scripts/mariadb.sh start "$DATADIR" "$port"
trap 'bash scripts/mariadb.sh stop "$DATADIR" >/dev/null 2>&1 || true' EXIT

# docs/benchmarks.md holds complete runs only.
out_args=(--out docs/benchmarks.md)
if [ -n "${BENCH_ONLY:-}" ]; then out_args=(); fi

cargo bench --locked --bench rowhook -- --port "$port" "${python_args[@]}" \
  --rowhook "${CARGO_TARGET_DIR:-target}/release/rowhook" \
  ${BENCH_ONLY:+--only "$BENCH_ONLY"} \
  --runs "${BENCH_RUNS:-5}" --rows "${BENCH_ROWS:-200000}" --work "$WORK/work" \
  ${out_args[@]+"${out_args[@]}"}
