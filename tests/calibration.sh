#!/usr/bin/env bash
# The statistics' calibration table (statistics issue, goal 6): `quorum simulate` with the
# defaults over several seeds, its calibration tables pooled. Per bucket of printed
# P(not spam): the held lines, the distinct corpus messages behind them (summed over seeds:
# the observations the bucket's share stands on), the mean printed value and the share that
# was ham, for the whole run and for the second half (steady state).
# Usage: tests/calibration.sh CORPUS [SEEDS] [extra simulate flags...]   (SEEDS default
# "1 2 3 4 5 6 7 8 9 10"; MATRIX_BIN names another quorum binary, as for tests/matrix.sh)
. "$(dirname "${BASH_SOURCE[0]}")/simulate-args.sh"
for seed in $seeds; do
    "$bin" simulate "$corpus" --seed "$seed" "$@" 2>/dev/null
done | python3 -c '
import json, sys
text, decoder, reports, at = sys.stdin.read(), json.JSONDecoder(), [], 0
while text[at:].strip():
    report, at = decoder.raw_decode(text, len(text) - len(text[at:].lstrip()))
    reports.append(report)
for table in ("calibration", "steady_state_calibration"):
    print(table, "(%d seeds)" % len(reports))
    print("  P(not spam)   lines  messages  printed  ham share  difference (points)")
    for i in range(10):
        rows = [r[table][i] for r in reports]
        lines = sum(b["lines"] for b in rows)
        messages = sum(b["messages"] for b in rows)
        printed = sum(b["mean_not_spam"] * b["lines"] for b in rows) / max(lines, 1)
        ham = sum(b["ham_share"] * b["lines"] for b in rows) / max(lines, 1)
        diff = "%+8.1f" % (100 * (ham - printed)) if lines else "       -"
        print("  %.1f-%.1f   %8d  %8d  %7.3f  %9.3f  %s" % (i / 10, (i + 1) / 10, lines, messages, printed, ham, diff))
'
