# rowhook developer commands. `make test` is all CI runs (through .ci/run).
#
#   make test        run every test (unit + integration; the integration tests start their own
#                    private MariaDB); first installs what they need when it is missing
#                    (scripts/test-deps.sh: mariadb-server, promtool, php-cli, ...; root + apt)
#   make test-faults the full-size fault tests and benchmarks (`make test` runs smaller ones):
#                    release build, figures printed (peak RSS, drain rate); minutes, not seconds
#   make demo        build, start a private MariaDB in ./.demo, run rowhook against it and show
#                    webhook deliveries (scripts/demo.sh; Ctrl-C stops everything)
#   make build       release build
#   make fmt         format the code
#   make lint        clippy, warnings denied (skipped with a note when clippy is not installed)
#   make clean-demo  stop the demo's MariaDB and remove ./.demo

SHELL := /bin/bash
CARGO ?= cargo
# Extra arguments for `cargo test`, e.g. `make test TEST_ARGS='-- --nocapture receiver'`.
TEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: test test-deps test-faults check-mariadb demo build fmt fmt-check lint clean-demo help bench

help:
	@sed -n '3,14p' Makefile | sed 's/^# \{0,1\}//'

test-deps:
	@bash scripts/test-deps.sh

check-mariadb:
	@if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || [ -x /usr/local/sbin/mariadbd ]; then \
	  :; \
	else \
	  echo "mariadbd not found: the integration tests start a private MariaDB server." >&2; \
	  echo "Install it with:  sudo apt-get install -y --no-install-recommends mariadb-server   (Debian/Ubuntu)" >&2; \
	  exit 1; \
	fi

test: test-deps
	$(CARGO) test --locked --no-fail-fast $(TEST_ARGS)

# The #[ignore]d tests whose path contains "faults", one at a time (each measures itself).
test-faults: test-deps
	$(CARGO) test --release --locked --test it -- --ignored --nocapture --test-threads=1 faults

demo:
	bash scripts/demo.sh

# rowhook's speed beside references measured in the same run (a private MariaDB, release build,
# python-mysql-replication in a venv under target/): prints one table and writes
# docs/benchmarks.md. About 5 minutes on 2 cores; never part of `make test`.
bench: check-mariadb
	bash scripts/bench.sh

build:
	$(CARGO) build --release --locked

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	@if $(CARGO) clippy --version >/dev/null 2>&1; then \
	  echo "$(CARGO) clippy --locked --all-targets -- -D warnings"; \
	  $(CARGO) clippy --locked --all-targets -- -D warnings; \
	else \
	  echo "cargo clippy is not installed (rustup component add clippy); skipping lint"; \
	fi

clean-demo:
	@if [ -d .demo/mysql ]; then bash scripts/mariadb.sh stop .demo/mysql || true; fi
	@for f in .demo/rowhook.pid .demo/listen.pid; do \
	  if [ -f $$f ] && kill -0 "$$(cat $$f)" 2>/dev/null; then kill "$$(cat $$f)" || true; fi; \
	done
	rm -rf .demo
