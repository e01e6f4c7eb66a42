# rowhook developer commands. `make test` is all CI runs (through .ci/run).
#
#   make test        the supply-chain check (cargo deny: licences, duplicate crates, crates.io
#                    only), then every test (unit + integration; the integration tests start their
#                    own private MariaDB; schemathesis fuzzes the admin API); first installs what
#                    they need when it is missing (scripts/test-deps.sh: mariadb-server, promtool,
#                    php-cli, ... with apt as root; schemathesis with pip; cargo-deny with cargo)
#   make test-faults the full-size fault tests and benchmarks (`make test` runs smaller ones):
#                    release build, figures printed (peak RSS, drain rate); minutes, not seconds
#   make demo        build, start a private MariaDB in ./.demo, run rowhook against it and show
#                    webhook deliveries (scripts/demo.sh; Ctrl-C stops everything)
#   make bench       rowhook's speed beside mariadb-binlog and python-mysql-replication, same run
#                    (scripts/bench.sh; writes docs/benchmarks.md; about 5 minutes)
#   make build       release build
#   make install     cargo install --locked --path .: the release binary as ~/.cargo/bin/rowhook
#                    (cargo's root: $CARGO_INSTALL_ROOT, else $CARGO_HOME, else ~/.cargo);
#                    PREFIX=/some/dir puts it in /some/dir/bin instead
#   make fuzz        each fuzz target (fuzz/: binlog decoder, config and [[events]] rules,
#                    rowhook listen's signature checks) for FUZZ_SECONDS (60) with cargo fuzz
#                    (nightly; cargo-fuzz installed when missing); binlog seeds cut from the
#                    fixture binlogs; crashes land in fuzz/artifacts/; never part of make test
#   make fmt         cargo fmt on the whole tree; the tree is not rustfmt-clean (long lines kept
#                    on purpose), so this rewrites most files: format the files you add instead
#   make lint        clippy, warnings denied (skipped with a note when clippy is not installed)
#   make clean-demo  stop the demo's MariaDB and remove ./.demo

SHELL := /bin/bash
CARGO ?= cargo
# Extra arguments for `cargo test`, e.g. `make test TEST_ARGS='-- --nocapture receiver'`.
TEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: fuzz test test-deps test-faults check-mariadb demo build install fmt fmt-check lint clean-demo help bench

help:
	@sed -n '3,26p' Makefile | sed 's/^# \{0,1\}//'

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

# The supply-chain check first (a second; deny.toml says what is allowed), then every test.
test: test-deps
	$(CARGO) deny --locked check licenses bans sources
	$(CARGO) test --locked --no-fail-fast $(TEST_ARGS)

# The #[ignore]d tests whose path contains "faults", one at a time (each measures itself).
test-faults: test-deps
	$(CARGO) test --release --locked --test it -- --ignored --nocapture --test-threads=1 faults

demo:
	bash scripts/demo.sh

# libFuzzer through cargo fuzz, nightly toolchain. The binlog corpus starts from the fixture
# binlogs (../shared/fixtures/binlogs beside the checkout, or $ROWHOOK_FIXTURES), cut into seeds
# at run time by fuzz/seed-binlogs.py; the rules corpus from fuzz/seeds/rules/. Corpora grow in
# fuzz/corpus/ (ignored by git) and are reused by the next run.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= binlog rules signatures
FIXTURES ?= $(or $(ROWHOOK_FIXTURES),../shared/fixtures/binlogs)

fuzz:
	@$(CARGO) +nightly --version >/dev/null 2>&1 || { echo "make fuzz needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@mkdir -p fuzz/corpus/binlog fuzz/corpus/rules fuzz/corpus/signatures
	@if [ -d "$(FIXTURES)" ]; then python3 fuzz/seed-binlogs.py "$(FIXTURES)" fuzz/corpus/binlog; \
	else echo "make fuzz: no fixture binlogs at $(FIXTURES) (set ROWHOOK_FIXTURES): binlog starts from its corpus as it is"; fi
	@cp fuzz/seeds/rules/* fuzz/corpus/rules/
	@for target in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$target for $(FUZZ_SECONDS) s"; \
	  (cd fuzz && $(CARGO) +nightly fuzz run -O $$target corpus/$$target -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -max_len=131072 -print_final_stats=1) || exit 1; \
	done

# rowhook's speed beside references measured in the same run (a private MariaDB, release build,
# python-mysql-replication in a venv under target/): prints one table and writes
# docs/benchmarks.md. About 5 minutes on 2 cores; never part of `make test`.
bench: check-mariadb
	bash scripts/bench.sh

build:
	$(CARGO) build --release --locked

# Where `make install` puts rowhook: $(PREFIX)/bin; empty: cargo's install root (see above).
PREFIX ?=

# cargo install --path builds in ./target, so after `make demo` or `make build` it only copies.
install:
	$(CARGO) install --locked --path . $(if $(PREFIX),--root "$(PREFIX)")
	@bin="$(if $(PREFIX),$(PREFIX),$${CARGO_INSTALL_ROOT:-$${CARGO_HOME:-$$HOME/.cargo}})/bin"; \
	found=$$(command -v rowhook || true); \
	if [ "$$found" = "$$bin/rowhook" ]; then \
	  echo "installed $$bin/rowhook (on PATH: rowhook --help)"; \
	elif [ -z "$$found" ]; then \
	  echo "installed $$bin/rowhook; $$bin is not on PATH: export PATH=\"$$bin:\$$PATH\""; \
	else \
	  echo "installed $$bin/rowhook, but rowhook on PATH is $$found (earlier on PATH)"; \
	fi

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
