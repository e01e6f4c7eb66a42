# rowhook in a container.
#
#   docker build -t rowhook .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/config/rowhook.toml:/etc/rowhook/rowhook.toml:ro" \
#     -e ROWHOOK__SOURCE__URL='mysql://rowhook:...@db:3306/helpdesk' \
#     -e ROWHOOK__ADMIN__TOKEN='...' \
#     rowhook
#   docker run --rm ... rowhook migrate --config /etc/rowhook/rowhook.toml   # once, and after upgrades
#
# Configuration: the mounted file, overridden by ROWHOOK__SECTION__KEY variables (keep secrets
# in the environment, not in the image). See docs/operations.md.

# Build stage: the same command as the README's `make build`.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

# Runtime: Debian slim (same glibc as the build stage), CA certificates for https:// webhooks,
# curl for the health check, and an unprivileged user with a fixed uid (for runAsNonRoot).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 rowhook \
    && useradd --system --uid 10001 --gid rowhook --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin rowhook
COPY --from=build /src/target/release/rowhook /usr/local/bin/rowhook
COPY config/rowhook.toml /etc/rowhook/rowhook.toml
USER 10001:10001
# Inside a container the admin API must listen beyond loopback; /api/* needs the token.
ENV ROWHOOK__HTTP__LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# rowhook handles SIGTERM itself: it stops reading, lets deliveries finish (shutdown_timeout) and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/rowhook"]
CMD ["run", "--config", "/etc/rowhook/rowhook.toml"]
