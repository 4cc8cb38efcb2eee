# Sourced by the testnet scripts: where the testnet lives and which build runs it.
# CACHET_TESTNET_DIR (default testnet/net) and CACHET_PROFILE (debug or release).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NET_DIR="${CACHET_TESTNET_DIR:-testnet/net}"
PROFILE="${CACHET_PROFILE:-debug}"
BIN_DIR="${CARGO_TARGET_DIR:-target}/$PROFILE"

build() {
    source testnet/prereqs.sh
    if [ "$PROFILE" = release ]; then
        cargo build --release -p cachet-node -p cachet-testnet -p cachet-cli
    else
        cargo build -p cachet-node -p cachet-testnet -p cachet-cli
    fi
}

testnet() {
    "$BIN_DIR/cachet-testnet" "$@"
}
