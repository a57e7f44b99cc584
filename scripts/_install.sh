# Shared by the scripts: every slow installation step says what it installs, why, and how long it may take.

# announce WHAT WHY HOW_LONG
announce() {
    echo "installing $1: $2 (may take $3)"
}

# apt_install WHY HOW_LONG PACKAGE...: Debian packages, quietly, after one line saying why.
apt_install() {
    local why=$1 how_long=$2
    shift 2
    announce "$* from Debian's packages" "$why" "$how_long"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}
