# Shared by scripts/serve and scripts/test: Node.js and npm, and the web frontend built into the package
# (frontend/ -> src/skao_staging/web/, which the service serves at "/").

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

ensure_npm() {
    if ! command -v npm >/dev/null 2>&1; then
        echo "installing Node.js and npm from Debian's packages"
        apt_install nodejs npm
    fi
}

build_frontend() {
    ensure_npm
    if [ ! -d frontend/node_modules ] || [ frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]; then
        (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
    fi
    (cd frontend && npm run --silent build >/dev/null)
    echo "frontend built into src/skao_staging/web/"
}
