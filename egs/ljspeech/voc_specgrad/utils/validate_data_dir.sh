#!/usr/bin/env bash
# validate_data_dir.sh DIR: a Kaldi data dir with wav.scp, text, utt2spk, spk2utt, sorted
# (LC_ALL=C), the same utterances in each, every wav present. Lists what is wrong.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DATA_DIR" 1>&2; exit 1; }
dir=$1; bad=0
for f in wav.scp text utt2spk spk2utt; do
    [ -s "${dir}/${f}" ] || { echo "$0: ${dir}/${f} missing or empty" 1>&2; bad=1; continue; }
    LC_ALL=C sort -c -k1,1 "${dir}/${f}" 2>/dev/null || { echo "$0: ${dir}/${f} not sorted (LC_ALL=C sort)" 1>&2; bad=1; }
done
[ ${bad} -eq 0 ] || exit 1
for f in text utt2spk; do
    if ! cmp -s <(cut -d' ' -f1 "${dir}/wav.scp") <(cut -d' ' -f1 "${dir}/${f}"); then
        echo "$0: ${dir}/wav.scp and ${dir}/${f} list different utterances" 1>&2; bad=1
    fi
done
missing=$(while read -r _ path; do [ -f "${path}" ] || echo "${path}"; done < "${dir}/wav.scp")
if [ -n "${missing}" ]; then
    echo "$0: ${dir}: $(echo "${missing}" | wc -l) wavs missing, e.g.: $(echo "${missing}" | head -3 | tr '\n' ' ')" 1>&2
    bad=1
fi
exit ${bad}
