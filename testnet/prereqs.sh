# Sourced by the scripts beside it and by .ci/run: installs what a fresh machine lacks to
# build and test Cachet (RocksDB's bindings need libclang; the namespaced testnet needs
# iproute2 and iptables), checks the Rust tools, and builds the explorer's assets, which
# cachetd compiles in (Node.js 20 and npm).
set -euo pipefail

install_apt_packages() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${missing[*]}" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "error: install ${missing[*]} as root first" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# libclang: RocksDB's bindings; iproute2 and iptables: the namespaced testnet's links.
install_apt_packages libclang-dev iproute2 iptables

command -v cargo >/dev/null || { echo "error: cargo not found: install Rust (rustup) first" >&2; exit 1; }

# The explorer (TypeScript, Vite): npm packages from its lock file, then its assets.
command -v npm >/dev/null || install_apt_packages nodejs npm
"$(dirname "${BASH_SOURCE[0]}")/../explorer/build"
