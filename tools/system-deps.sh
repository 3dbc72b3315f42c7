#!/bin/sh
# What the test suite needs from the operating system rather than from PyPI, from
# Debian's packages: chromium (the dashboard's end-to-end tests drive it; Playwright
# cannot download a browser here), nix-bin (nix-instantiate checks the NixOS module) and
# systemd (systemd-analyze verifies the unit files). Installs what is missing with apt;
# does nothing when all are there.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v nix-instantiate >/dev/null 2>&1 || missing="$missing nix-bin"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "The tests need Debian's$missing: install them as root" \
         "(apt-get install$missing), then run this again." >&2
    exit 1
fi
echo "Installing Debian's$missing for the tests…" >&2
$as_root apt-get update -qq
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq $missing >/dev/null
