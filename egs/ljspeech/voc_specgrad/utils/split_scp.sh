#!/usr/bin/env bash
# split_scp.sh IN.scp OUT_DIR N: OUT_DIR/{1..N}.scp, consecutive lines, sizes differing by <= 1.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 IN.scp OUT_DIR N" 1>&2; exit 1; }
in=$1; out=$2; n=$3
total=$(wc -l < "${in}")
[ "${n}" -ge 1 ] && [ "${n}" -le "${total}" ] || { echo "$0: cannot split ${total} lines of ${in} into ${n}" 1>&2; exit 1; }
mkdir -p "${out}"
awk -v n="${n}" -v total="${total}" -v out="${out}" '
    { part = int((NR - 1) * n / total) + 1; print > (out "/" part ".scp") }' "${in}"
