#!/usr/bin/env bash
# The project's test command (README): installs and starts what the tests talk to — Dovecot,
# Postfix and PostgreSQL from Debian's packages, on loopback — then builds the `quorum`
# binary the end-to-end tests run, and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tests/setup.sh
cargo build --locked -p quorum --bins
cargo test --locked --workspace "$@"
