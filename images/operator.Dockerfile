# syntax=docker/dockerfile:1
# The dbapi-operator image, for those with Docker (BuildKit). From the
# repository root:
#
#     docker build -f images/operator.Dockerfile -t ghcr.io/dbapi/dbapi-operator:0.1.0 .
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
    cargo build --release --locked -p dbapi-operator \
    && install -D -m 0755 target/release/dbapi-operator /out/dbapi-operator

# glibc, libgcc_s, CA certificates, nsswitch.conf, the user 65532 and no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="dbapi-operator"
LABEL org.opencontainers.image.description="Reconciles DatabaseApi resources into autoscaled dbapi runtimes"
LABEL org.opencontainers.image.version="0.1.0"
LABEL org.opencontainers.image.source="https://github.com/dbapi/dbapi"
LABEL org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/dbapi-operator /usr/local/bin/dbapi-operator
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /home/nonroot
USER 65532
# /metrics and /healthz (the chart's metrics.port).
EXPOSE 8081/tcp
ENTRYPOINT ["/usr/local/bin/dbapi-operator"]
