# Build: the same command as the README's `make build`.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --no-create-home rowhook
COPY --from=build /src/target/release/rowhook /usr/local/bin/rowhook
COPY config/rowhook.toml /etc/rowhook/rowhook.toml
USER rowhook
ENV ROWHOOK__HTTP__LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/rowhook"]
CMD ["run", "--config", "/etc/rowhook/rowhook.toml"]
