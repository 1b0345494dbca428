#!/usr/bin/env bash
# The project's test command (README): installs and starts what the tests talk to — Dovecot,
# Postfix, PostgreSQL and Chromium with ChromeDriver from Debian's packages, on loopback — then builds the `quorum`
# binary the end-to-end tests run, and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tests/setup.sh
cargo build --locked -p quorum --bins
# nextest runs each test in its own process and ends with one summary line; plain cargo
# test is the fallback where it is not installed.
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --workspace --no-fail-fast "$@"
else
    cargo test --locked --workspace --no-fail-fast "$@"
fi
