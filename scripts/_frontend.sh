# Shared by scripts/serve and scripts/test: Node.js and npm, and the web frontend built into the package
# (frontend/ -> src/skao_staging/web/, which the service serves at "/").

ensure_npm() {
    if ! command -v npm >/dev/null 2>&1; then
        apt_install "Node.js builds the web interface" "about a minute" nodejs npm
    fi
}

build_frontend() {
    ensure_npm
    if [ ! -d frontend/node_modules ] || [ frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]; then
        announce "the web interface's npm packages" "to build it (pinned in frontend/package-lock.json)" "about a minute"
        (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
    fi
    (cd frontend && npm run --silent build >/dev/null)
    echo "frontend built into src/skao_staging/web/"
}
