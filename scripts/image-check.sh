#!/usr/bin/env bash
# Checks the archives scripts/images.sh wrote (in DBAPI_IMAGE_DIR, default
# target/images/) and images/*.Dockerfile against what the chart and the
# operator expect of the images:
#   - the index names each image ghcr.io/dbapi/dbapi-<name>:<version> for
#     containerd (io.containerd.image.name) and tags it <version>;
#   - every blob's digest and size, the layer's diff_id;
#   - the config: entrypoint /usr/local/bin/<name>, user 65532 (the chart's
#     and the operator's runAsUser), the exposed ports (the operator's
#     API_PORT and ADMIN_PORT; the chart's metrics.port), the labels;
#   - the root filesystem: exactly the binary, the libraries ldd names for
#     it, the CA bundle, passwd, group and nsswitch.conf; no shell, no
#     symlinks, no setuid, all owned by root but 65532's home;
#   - that the binary starts from the image's files alone:
#     `chroot --userspec=65532:65532 <rootfs> /usr/local/bin/<name> --version`;
#   - that the Dockerfile has the same entrypoint, user, ports, environment,
#     working directory and labels, on gcr.io/distroless/cc-debian12:nonroot.
#
# Needs python3, and root for the start test (chroot). Exits 1 naming each
# failure; 3 when all else passed but, not being root, it could not start
# the binaries.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT_DIR="${DBAPI_IMAGE_DIR:-${CARGO_TARGET_DIR:-$(pwd)/target}/images}"

die() { echo "image-check: $*" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || die "python3 is needed"
CHROOT="$(command -v chroot)" || die "chroot is needed (coreutils)"

VERSION="$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"])')" ||
    die "could not read [workspace.package] version from Cargo.toml"

# What the images must match, read from where the chart and the operator
# say it, so a change there that the images miss fails here.
grab() {   # grab FILE SED-REGEX: the regex's first group, or die
    local value
    value="$(sed -n "s/$2/\1/p" "$1" | head -n1)"
    [[ -n "$value" ]] || die "could not find /$2/ in $1"
    echo "$value"
}
API_PORT="$(grab operator/src/resources/mod.rs '^pub const API_PORT: i32 = \([0-9]*\);.*')"
ADMIN_PORT="$(grab operator/src/resources/mod.rs '^pub const ADMIN_PORT: i32 = \([0-9]*\);.*')"
RUNTIME_UID="$(grab operator/src/resources/deployment.rs '^pub const RUNTIME_UID: i64 = \([0-9]*\);.*')"
CHART_UID="$(grab charts/dbapi-operator/templates/deployment.yaml '^ *runAsUser: \([0-9]*\)$')"
METRICS_PORT="$(grab charts/dbapi-operator/values.yaml '^  port: \([0-9]*\)$')"
OPERATOR_LISTEN_PORT="$(grab operator/src/main.rs '.*default_value = "0\.0\.0\.0:\([0-9]*\)".*')"
[[ "$RUNTIME_UID" == "$CHART_UID" ]] || die "the operator runs the runtime as $RUNTIME_UID but the chart runs the operator as $CHART_UID; the images have one user"
[[ "$METRICS_PORT" == "$OPERATOR_LISTEN_PORT" ]] || die "the chart's metrics.port ($METRICS_PORT) is not the operator's default --metrics-listen port ($OPERATOR_LISTEN_PORT)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dbapi-image-check.XXXXXXXX")"
trap 'rm -rf "$WORK"' EXIT
failed=0

# check_image NAME DOCKERFILE PORTS [ENV...]
check_image() {
    local name=$1 dockerfile=$2 ports=$3
    shift 3
    local archive="$OUT_DIR/$name-$VERSION.oci.tar" root="$WORK/$name/rootfs" out
    echo "image-check: $archive"
    if [[ ! -f "$archive" ]]; then
        echo "image-check: FAIL $name: no $archive (run scripts/images.sh first)" >&2
        failed=1
        return
    fi
    if ! python3 - "$archive" "$name" "$VERSION" "$RUNTIME_UID" "$ports" "$dockerfile" "$root" "$@" <<'PY'; then
import gzip, hashlib, io, json, os, shlex, stat, subprocess, sys, tarfile

archive, name, version, uid, ports, dockerfile, rootfs, *env = sys.argv[1:]
ref = f"ghcr.io/dbapi/{name}:{version}"
entrypoint = f"/usr/local/bin/{name}"
ports = {f"{p}/tcp" for p in ports.split()}
failures = []


def fail(msg):
    failures.append(msg)
    print(f"image-check: FAIL {name}: {msg}", file=sys.stderr)


outer = tarfile.open(archive)
files = {os.path.normpath(m.name): m for m in outer.getmembers() if m.isfile()}


def blob(desc, what):
    """The bytes of a descriptor's blob, checked against its digest and size."""
    algo, _, hexdigest = desc["digest"].partition(":")
    member = files.get(f"blobs/{algo}/{hexdigest}")
    if member is None:
        sys.exit(fail(f"the {what} blob {desc['digest']} is not in the archive") or 1)
    data = outer.extractfile(member).read()
    if algo != "sha256" or hashlib.sha256(data).hexdigest() != hexdigest:
        fail(f"the {what} blob does not match its digest {desc['digest']}")
    if len(data) != desc["size"]:
        fail(f"the {what} blob is {len(data)} bytes, its descriptor says {desc['size']}")
    return data


for required in ("oci-layout", "index.json"):
    if required not in files:
        sys.exit(fail(f"no {required}: not an OCI image layout") or 1)
if json.load(outer.extractfile(files["oci-layout"])).get("imageLayoutVersion") != "1.0.0":
    fail("oci-layout is not imageLayoutVersion 1.0.0")

# The index: one manifest, named for containerd and tagged.
index = json.load(outer.extractfile(files["index.json"]))
manifests = index.get("manifests", [])
if len(manifests) != 1:
    sys.exit(fail(f"index.json lists {len(manifests)} manifests, expected 1") or 1)
annotations = manifests[0].get("annotations", {})
if annotations.get("io.containerd.image.name") != ref:
    fail(f"index.json names the image {annotations.get('io.containerd.image.name')!r} "
         f"(io.containerd.image.name), expected {ref!r}: kind/containerd would not tag it so")
if annotations.get("org.opencontainers.image.ref.name") != version:
    fail(f"index.json tags it {annotations.get('org.opencontainers.image.ref.name')!r}, expected {version!r}")

manifest = json.loads(blob(manifests[0], "manifest"))
config_doc = json.loads(blob(manifest["config"], "config"))
# The binaries are this machine's build, so the image is for its platform.
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
if (config_doc.get("os"), config_doc.get("architecture")) != ("linux", arch):
    fail(f"the config's platform is {config_doc.get('os')}/{config_doc.get('architecture')}, expected linux/{arch}")

# The config.
config = config_doc.get("config", {})
if config.get("Entrypoint") != [entrypoint]:
    fail(f"Entrypoint is {config.get('Entrypoint')}, expected [{entrypoint!r}]")
if config.get("Cmd"):
    fail(f"Cmd is {config['Cmd']}, expected none (the operator and the chart pass the arguments)")
if config.get("User") != uid:
    fail(f"User is {config.get('User')!r}, expected the numeric {uid!r} (runAsNonRoot needs a number)")
if set(config.get("ExposedPorts", {})) != ports:
    fail(f"ExposedPorts are {sorted(config.get('ExposedPorts', {}))}, expected {sorted(ports)}")
for want in env + ["SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]:
    if want not in config.get("Env", []):
        fail(f"Env lacks {want} (it has {config.get('Env')})")
labels = config.get("Labels", {})
for key, want in {
    "org.opencontainers.image.title": name,
    "org.opencontainers.image.version": version,
    "org.opencontainers.image.source": "https://github.com/dbapi/dbapi",
    "org.opencontainers.image.licenses": "Apache-2.0",
}.items():
    if labels.get(key) != want:
        fail(f"label {key} is {labels.get(key)!r}, expected {want!r}")

# The layer: one, whose uncompressed digest is the config's diff_id.
layers = manifest.get("layers", [])
if len(layers) != 1:
    sys.exit(fail(f"the image has {len(layers)} layers, expected 1") or 1)
try:
    layer_bytes = blob(layers[0], "layer")
    if layers[0]["mediaType"].endswith("+gzip"):
        layer_bytes = gzip.decompress(layer_bytes)
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    if config_doc.get("rootfs", {}).get("diff_ids") != [diff_id]:
        fail(f"the config's diff_ids {config_doc.get('rootfs', {}).get('diff_ids')} are not the layer's {diff_id}")
    layer = tarfile.open(fileobj=io.BytesIO(layer_bytes))
    layer.getmembers()
except (OSError, EOFError, tarfile.TarError) as e:
    sys.exit(fail(f"the layer is not a complete gzipped tar ({e})") or 1)


def layer_path(member):
    path = os.path.normpath(member.name)
    return "/" if path == "." else "/" + path.lstrip("/")


members = {layer_path(m): m for m in layer.getmembers()}
for path in ("/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/sh", "/bin/busybox"):
    if path in members:
        fail(f"{path} is in the image: it must have no shell")
for path, m in sorted(members.items()):
    if not (m.isfile() or m.isdir()):
        fail(f"{path} is neither a file nor a directory (links and devices are not expected)")
    if m.mode & (stat.S_ISUID | stat.S_ISGID):
        fail(f"{path} is setuid or setgid")
    owner = (m.uid, m.gid)
    if path == "/home/nonroot":
        if owner != (int(uid), int(uid)) or m.mode & 0o777 != 0o700:
            fail(f"/home/nonroot is {m.uid}:{m.gid} {oct(m.mode)}, expected {uid}:{uid} 0o700")
    elif owner != (0, 0):
        fail(f"{path} is owned by {m.uid}:{m.gid}, expected root")
if "/tmp" not in members or not members["/tmp"].isdir() or members["/tmp"].mode & 0o7777 != 0o1777:
    fail("/tmp is missing or not mode 1777")

# Unpack it: the start test runs the binary from these files alone.
layer.extractall(rootfs, numeric_owner=True, filter="tar")
binary = os.path.join(rootfs, entrypoint.lstrip("/"))
if entrypoint not in members or not members[entrypoint].mode & 0o001:
    sys.exit(fail(f"{entrypoint} is missing or not executable by everyone") or 1)

# Exactly the files the binary needs: it, its libraries, and /etc.
ldd = subprocess.run(["ldd", binary], capture_output=True, text=True)
libs = set()
for line in ldd.stdout.splitlines():
    parts = line.split()
    if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
        libs.add(parts[2])
    elif parts and parts[0].startswith("/"):
        libs.add(parts[0])
expected = libs | {entrypoint, "/etc/ssl/certs/ca-certificates.crt", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"}
present = {path for path, m in members.items() if not m.isdir()}
for path in sorted(present - expected):
    fail(f"{path} is in the image but not expected (only the binary, its libraries and /etc files are)")
for path in sorted(expected - present):
    fail(f"{path} is expected (the binary needs it) but not in the image")
passwd = open(os.path.join(rootfs, "etc/passwd")).read().splitlines()
if not any(line.split(":")[2:4] == [uid, uid] for line in passwd):
    fail(f"/etc/passwd has no entry for {uid}:{uid}")

# The Dockerfile's final stage says the same.
lines, pending = [], ""
for raw in open(dockerfile).read().splitlines():
    raw = raw.strip()
    if not raw or raw.startswith("#"):
        continue
    if raw.endswith("\\"):
        pending += raw[:-1] + " "
        continue
    lines.append(pending + raw)
    pending = ""
stages = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
final = lines[stages[-1]:] if stages else []
if not final or final[0].split()[1] != "gcr.io/distroless/cc-debian12:nonroot":
    fail(f"{dockerfile}: the final stage is not FROM gcr.io/distroless/cc-debian12:nonroot")


def instr(keyword):
    return [line.split(None, 1)[1] for line in final if line.split(None, 1)[0].upper() == keyword]


def pairs(keyword):
    return dict(kv.split("=", 1) for args in instr(keyword) for kv in shlex.split(args))


if instr("ENTRYPOINT") != [json.dumps([entrypoint])]:
    fail(f"{dockerfile}: ENTRYPOINT is {instr('ENTRYPOINT')}, expected {json.dumps([entrypoint])} as in the image")
if instr("CMD"):
    fail(f"{dockerfile}: has a CMD; the image has none")
if instr("USER") != [config.get("User")]:
    fail(f"{dockerfile}: USER is {instr('USER')}, expected {config.get('User')} as in the image")
if instr("WORKDIR") != [config.get("WorkingDir")]:
    fail(f"{dockerfile}: WORKDIR is {instr('WORKDIR')}, expected {config.get('WorkingDir')} as in the image")
exposed = {p if "/" in p else p + "/tcp" for args in instr("EXPOSE") for p in args.split()}
if exposed != set(config.get("ExposedPorts", {})):
    fail(f"{dockerfile}: EXPOSE {sorted(exposed)}, the image exposes {sorted(config.get('ExposedPorts', {}))}")
image_env = dict(kv.split("=", 1) for kv in config.get("Env", []) if not kv.startswith("PATH="))
if pairs("ENV") != image_env:
    fail(f"{dockerfile}: ENV {pairs('ENV')}, the image has {image_env} (besides PATH, which distroless sets)")
if pairs("LABEL") != labels:
    fail(f"{dockerfile}: LABEL {pairs('LABEL')}, the image has {labels}")
if not any(f"{entrypoint}" in args.split() for args in instr("COPY")):
    fail(f"{dockerfile}: no COPY to {entrypoint}")
build = " ".join(lines)
if f"cargo build --release --locked -p {name}" not in build:
    fail(f"{dockerfile}: no `cargo build --release --locked -p {name}`")

sys.exit(1 if failures else 0)
PY
        failed=1
    fi

    # Start it from the image's files alone, as the image's user, with none
    # of this environment.
    [[ -x "$root/usr/local/bin/$name" ]] || return 0
    if ((EUID != 0)); then
        echo "image-check: $name: start test skipped: chroot needs root"
        return 0
    fi
    if out="$(env -i "$CHROOT" --userspec="$RUNTIME_UID:$RUNTIME_UID" "$root" "/usr/local/bin/$name" --version 2>&1)" &&
        [[ "$out" == "$name $VERSION" ]]; then
        echo "image-check: $name: chroot start ok ($out)"
    else
        echo "image-check: FAIL $name: \`chroot $root /usr/local/bin/$name --version\` printed '$out', expected '$name $VERSION'" >&2
        failed=1
    fi
}

check_image dbapi-runtime images/runtime.Dockerfile "$API_PORT $ADMIN_PORT" \
    "DBAPI_LISTEN=0.0.0.0:$API_PORT" "DBAPI_ADMIN_LISTEN=0.0.0.0:$ADMIN_PORT"
check_image dbapi-operator images/operator.Dockerfile "$METRICS_PORT"

if ((failed)); then
    echo "image-check: FAILED" >&2
    exit 1
fi
if ((EUID != 0)); then
    echo "image-check: ok, but the binaries were not started (run as root for the chroot start test)"
    exit 3
fi
echo "image-check: ok (dbapi-runtime and dbapi-operator $VERSION)"
