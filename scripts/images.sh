#!/usr/bin/env bash
# Builds the container images of dbapi-runtime and dbapi-operator without a
# Docker engine, as OCI archives:
#
#     ./scripts/images.sh                           # release build (what ships)
#     DBAPI_IMAGE_PROFILE=dev ./scripts/images.sh   # reuse the debug build (the test command does)
#
# Each image is `scratch` plus the cargo-built binary at /usr/local/bin,
# exactly the shared libraries `ldd` names (glibc, libgcc_s, the loader at
# its absolute path), the CA bundle, nsswitch.conf and passwd/group entries
# for the non-root user 65532: what images/*.Dockerfile get from
# gcr.io/distroless/cc-debian12:nonroot, with the same entrypoint, user,
# ports, environment and labels. No shell, no package manager.
#
# Writes ${DBAPI_IMAGE_DIR:-${CARGO_TARGET_DIR:-target}/images}/dbapi-{runtime,operator}-<version>.oci.tar:
# an OCI image layout in a tar, whose index entry carries
# io.containerd.image.name = ghcr.io/dbapi/dbapi-<name>:<version>, the name
# containerd's importer (`kind load image-archive`, `k3d image import`,
# `ctr images import`) gives the image. scripts/image-check.sh checks them.
#
# Needs Debian's umoci (apt-get install umoci), python3, ldd, GNU tar and
# the CA bundle (ca-certificates); not root. Exits 3 when umoci is missing,
# so a caller can report the step as skipped.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

die() { echo "images: $*" >&2; exit 1; }

if ! command -v umoci >/dev/null 2>&1; then
    echo "images: umoci is not installed; install it with: apt-get install umoci" >&2
    exit 3
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed (apt-get install python3)"
command -v ldd >/dev/null 2>&1 || die "ldd is needed (apt-get install libc-bin)"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[[ -s "$CA_BUNDLE" ]] || die "no CA bundle at $CA_BUNDLE (apt-get install ca-certificates)"

VERSION="$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"])')" ||
    die "could not read [workspace.package] version from Cargo.toml"
REGISTRY=ghcr.io/dbapi
SOURCE=https://github.com/dbapi/dbapi
UID_GID=65532
PROFILE="${DBAPI_IMAGE_PROFILE:-release}"
case "$PROFILE" in
    release) PROFILE_DIR=release ;;
    dev) PROFILE_DIR=debug ;;
    *) die "DBAPI_IMAGE_PROFILE must be release or dev, not '$PROFILE'" ;;
esac
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
OUT_DIR="${DBAPI_IMAGE_DIR:-$TARGET_DIR/images}"
# Every date in the image (file times, config, history) is the last
# commit's, so the same commit and binaries give the same archive.
EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
CREATED="$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)"

# One package at a time, as the Dockerfiles build them (and the compat
# suite the runtime): a joint build would unify their dependencies'
# features into a third variant to compile.
for package in dbapi-runtime dbapi-operator; do
    echo "images: cargo build --profile $PROFILE --locked -p $package"
    cargo build --profile "$PROFILE" --locked -p "$package" || die "cargo build -p $package failed"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dbapi-images.XXXXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT_DIR"

# The absolute paths of the shared objects a binary loads, the dynamic
# loader included; fails naming any that ldd cannot find.
shared_libs() {
    local out
    out="$(ldd "$1" 2>&1)" || { [[ "$out" == *"not a dynamic executable"* ]] && return 0; die "ldd $1: $out"; }
    if grep -q "not found" <<<"$out"; then die "ldd $1 cannot find: $(grep "not found" <<<"$out" | tr -s ' \t' ' ')"; fi
    # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
    # linux-vdso has no file.
    awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' <<<"$out"
}

# The root filesystem of one image, in directory $1, for binary $2.
# Modes are set here; owners and dates are the layer tar's (below).
stage_rootfs() {
    local root=$1 bin=$2 lib libs
    libs="$(shared_libs "$bin")"   # here, not in a pipe, so its failure stops us
    mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/home/nonroot" "$root/tmp"
    install -m 0755 "$bin" "$root/usr/local/bin/$(basename "$bin")"
    while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        # The file itself, not a symlink: the image has no /lib -> usr/lib
        # link for it to point through.
        cp -L "$lib" "$root$lib"
        chmod 0755 "$root$lib"
    done <<<"$libs"
    install -m 0644 "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
    printf '%s\n' "root:x:0:0:root:/root:/sbin/nologin" \
        "nonroot:x:$UID_GID:$UID_GID:nonroot:/home/nonroot:/sbin/nologin" >"$root/etc/passwd"
    printf '%s\n' "root:x:0:" "nonroot:x:$UID_GID:" >"$root/etc/group"
    # /etc/hosts before DNS, as on Debian and distroless: without this file
    # glibc asks DNS first, and `localhost` may not resolve in a pod.
    printf '%s\n' "passwd: files" "group: files" "hosts: files dns" >"$root/etc/nsswitch.conf"
    chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
    find "$root" -type d -exec chmod 0755 {} +
    # HOME of 65532 (demo's data directory) and a /tmp, as distroless has.
    chmod 0700 "$root/home/nonroot"
    chmod 1777 "$root/tmp"
}

# The layer: rootfs $1 as tar $2, everything owned by root but 65532's
# home, every date $EPOCH, in a fixed order; no root privileges needed.
layer_tar() {
    local root=$1 tar=$2
    local opts=(--format=ustar --numeric-owner --mtime="@$EPOCH" --no-recursion --directory "$root")
    (cd "$root" && find . -mindepth 1 ! -path ./home/nonroot -printf '%P\n' | LC_ALL=C sort) >"$tar.list"
    tar --create --file "$tar" "${opts[@]}" --owner=0 --group=0 --files-from "$tar.list"
    tar --append --file "$tar" "${opts[@]}" --owner="$UID_GID" --group="$UID_GID" home/nonroot
}

# build_image NAME DESCRIPTION PORTS [ENV...]: writes $OUT_DIR/NAME-$VERSION.oci.tar.
build_image() {
    local name=$1 description=$2 ports=$3 port env
    shift 3
    local ref="$REGISTRY/$name:$VERSION" layout="$WORK/$name/oci" root="$WORK/$name/rootfs"
    local out="$OUT_DIR/$name-$VERSION.oci.tar"
    echo "images: $ref -> $out"
    stage_rootfs "$root" "$TARGET_DIR/$PROFILE_DIR/$name"
    layer_tar "$root" "$WORK/$name/layer.tar"

    # An empty image plus that one layer, which umoci compresses and
    # records. (Not `umoci insert`: the 0.4.7 in Debian 12 leaves the end of
    # that layer's tar out, which scripts/image-check.sh catches.)
    umoci init --layout "$layout"
    umoci new --image "$layout:$VERSION"
    umoci raw add-layer --image "$layout:$VERSION" --history.created "$CREATED" \
        --history.created_by "scripts/images.sh: $name and its libraries" "$WORK/$name/layer.tar"

    local args=(
        --created "$CREATED" --history.created "$CREATED" --history.created_by "scripts/images.sh: config"
        --config.entrypoint "/usr/local/bin/$name"
        --config.user "$UID_GID"
        --config.workingdir /home/nonroot
        --config.env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        --config.env "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
        --config.label "org.opencontainers.image.title=$name"
        --config.label "org.opencontainers.image.description=$description"
        --config.label "org.opencontainers.image.version=$VERSION"
        --config.label "org.opencontainers.image.source=$SOURCE"
        --config.label "org.opencontainers.image.licenses=Apache-2.0"
    )
    for port in $ports; do args+=(--config.exposedports "$port/tcp"); done
    for env in "$@"; do args+=(--config.env "$env"); done
    umoci config --image "$layout:$VERSION" "${args[@]}"
    umoci gc --layout "$layout"

    # containerd names an imported image by io.containerd.image.name; the
    # standard org.opencontainers.image.ref.name (umoci's tag) is only the tag.
    python3 - "$layout/index.json" "$ref" "$VERSION" <<'PY'
import json, sys
path, ref, tag = sys.argv[1:]
with open(path) as f:
    index = json.load(f)
entries = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
if len(entries) != 1:
    sys.exit(f"images: {path}: expected one manifest tagged {tag}, found {len(entries)}")
entries[0]["annotations"]["io.containerd.image.name"] = ref
with open(path, "w") as f:
    json.dump(index, f, separators=(",", ":"))
PY

    tar --create --file "$out.part" --directory "$layout" --format=ustar --sort=name \
        --owner=0 --group=0 --numeric-owner --mode=u=rwX,go=rX --mtime="@$EPOCH" oci-layout index.json blobs
    mv "$out.part" "$out"
}

# The runtime listens on loopback unless told otherwise (right for a run on
# a laptop, unreachable in a container); the operator sets the same.
build_image dbapi-runtime \
    "Serves a PostgreSQL, MySQL/MariaDB or SQLite database as a PostgREST-compatible REST API" \
    "8080 9090" \
    "DBAPI_LISTEN=0.0.0.0:8080" "DBAPI_ADMIN_LISTEN=0.0.0.0:9090"
build_image dbapi-operator \
    "Reconciles DatabaseApi resources into autoscaled dbapi runtimes" \
    "8081"

ls -l "$OUT_DIR"/*-"$VERSION".oci.tar
