#!/usr/bin/env bash
# Install what building and testing swarmd needs on Debian 12, if missing.
set -eu
pkgs=(build-essential pkg-config meson ninja-build libuv1-dev libraft-dev
      libprotobuf-c-dev protobuf-c-compiler libnghttp2-dev libssl-dev
      libsqlite3-dev libyaml-dev python3 python3-grpcio python3-grpc-tools
      python3-pytest python3-cryptography openssl iproute2 procps
      libmicrohttpd-dev python3-prometheus-client libmnl-dev libnftables-dev
      libldns-dev nftables util-linux
      libcurl4-openssl-dev libarchive-dev libjansson-dev docker-registry
      busybox-static chromium runc tini curl)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
