#!/usr/bin/env bash
# Installs what Baton needs on Debian 12, as root: the DPDK 22.11 headers and
# PMDs, libclang for bindgen, and the tools the netns testbed and the demo
# use. Quick when everything is present; never asks a question.
set -euo pipefail

PACKAGES=(
    libdpdk-dev dpdk           # DPDK 22.11: headers, PMD plugins, dpdk-devbind.py
    libclang-dev pkg-config    # bindgen and the C shim
    build-essential
    nginx-light                # the web server on each testbed node
    iproute2 nftables ethtool  # namespaces, veths, the wire port's ingress drop
    curl wrk iputils-ping tcpdump procps openssl python3
    python3-yaml               # reads docker/compose.yaml for the container test
    prometheus                 # scrapes the testbed's /metrics; promtool checks them
    haproxy                    # `make bench-handoff`: the L7 proxy Baton is measured against
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
    if [[ $(id -u) != 0 ]]; then
        echo "deps: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The package starts nginx on the host; Baton's testbed runs its own per
# node, so the host's copy is not needed.
# The same for Prometheus (the metrics test starts its own) and HAProxy
# (`make bench-handoff` starts its own).
for service in nginx prometheus haproxy; do
    if systemctl is-active --quiet "$service" 2>/dev/null; then
        systemctl stop "$service" || true
    fi
done

if ! command -v cargo >/dev/null; then
    echo "deps: cargo not found: install Rust (https://rustup.rs) first" >&2
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "deps: installing cargo-nextest (one-time, a few minutes)" >&2
    cargo install --locked cargo-nextest
fi
