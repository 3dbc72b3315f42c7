#!/bin/sh
# What the test suite needs from the operating system rather than from PyPI: Debian's
# Chromium, which the dashboard's end-to-end tests drive (Playwright cannot download a
# browser here). Installs it with apt when it is missing; does nothing otherwise.
set -eu
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "The dashboard tests need Chromium: install Debian's chromium package as root" \
         "(apt-get install chromium), then run this again." >&2
    exit 1
fi
echo "Installing Debian's chromium for the dashboard's end-to-end tests…" >&2
$as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium >/dev/null
