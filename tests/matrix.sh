#!/usr/bin/env bash
# The statistics' robustness matrix (statistics issue): `quorum simulate` over seeds x reach x
# ham circle x error rate x Sybils, one line per cell: ham copies deleted by the statistics
# (the number that must be 0), the steady-state share of spam deleted before the summary, and
# how far below the deletion bound the nearest ham copy stayed (log-odds; the report's
# ham_margin.closest).
# Usage: tests/matrix.sh CORPUS [SEEDS] [extra simulate flags...]   (SEEDS default "1 2 3 4 5 6 7 8 9 10";
# MATRIX_BIN names another quorum binary, e.g. a copy kept while the tree is rebuilt)
. "$(dirname "${BASH_SOURCE[0]}")/simulate-args.sh"
cells() {
    for seed in $seeds; do for reach in 0.01 0.02 0.05; do for circle in 2 3 10; do
    for error in 0 0.01 0.05; do for sybils in 0 100; do
        echo "$seed $reach $circle $error $sybils"
    done; done; done; done; done
}
run() {
    read -r seed reach circle error sybils <<<"$1"
    shift
    "$bin" simulate "$corpus" --seed "$seed" --reach "$reach" --ham-circle "$circle" \
        --error-rate "$error" --sybils "$sybils" "$@" 2>/dev/null |
        python3 -c 'import json,os,sys; r=json.load(sys.stdin); m=r["ham_margin"]["closest"]; os.write(1, ("%s %s %s %s\n" % (sys.argv[1], r["ham_deleted_statistical"], round(r["steady_state_spam_deleted_before_summary_share"], 4), "-" if m is None else round(m, 2))).encode())' "$seed $reach $circle $error $sybils"
}
export -f run
export bin corpus
echo "seed reach circle error sybils ham_deleted steady_spam_deleted ham_margin"
# Through a pipe: each cell's line is one write, so parallel cells never interleave.
cells | xargs -P "$(nproc)" -I{} bash -c 'run "$@"' _ {} "$@" | cat
