# syntax=docker/dockerfile:1
# The dbapi-runtime image, for those with Docker (BuildKit). From the
# repository root:
#
#     docker build -f images/runtime.Dockerfile -t ghcr.io/dbapi/dbapi-runtime:0.1.0 .
#
# scripts/images.sh builds the same image without Docker, and
# scripts/image-check.sh checks that this file and that image agree
# (entrypoint, user, ports, environment, working directory, labels): change
# both together.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the build between runs; the binary
# is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p dbapi-runtime \
    && install -D -m 0755 target/release/dbapi-runtime /out/dbapi-runtime

# glibc, libgcc_s, CA certificates, nsswitch.conf, the user 65532 and no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="dbapi-runtime"
LABEL org.opencontainers.image.description="Serves a PostgreSQL, MySQL/MariaDB or SQLite database as a PostgREST-compatible REST API"
LABEL org.opencontainers.image.version="0.1.0"
LABEL org.opencontainers.image.source="https://github.com/dbapi/dbapi"
LABEL org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/dbapi-runtime /usr/local/bin/dbapi-runtime
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# The binary listens on loopback by default, unreachable from outside a
# container; the operator sets the same.
ENV DBAPI_LISTEN=0.0.0.0:8080
ENV DBAPI_ADMIN_LISTEN=0.0.0.0:9090
WORKDIR /home/nonroot
USER 65532
# The API, and the admin port (/healthz, /readyz, /metrics).
EXPOSE 8080/tcp 9090/tcp
ENTRYPOINT ["/usr/local/bin/dbapi-runtime"]
