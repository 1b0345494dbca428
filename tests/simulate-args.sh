# Sourced by tests/matrix.sh and tests/calibration.sh: their common arguments
# `CORPUS [SEEDS] [extra simulate flags...]` into $corpus, $seeds (default seeds 1-10) and
# "$@", and $bin, the quorum binary (MATRIX_BIN, else the release build, built if missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
corpus=$1
seeds=${2:-"1 2 3 4 5 6 7 8 9 10"}
shift $(( $# > 1 ? 2 : 1 ))
bin=${MATRIX_BIN:-target/release/quorum}
[ -x "$bin" ] || cargo build --release --locked -p quorum
