#!/usr/bin/env bash
# data_prep.sh DB_ROOT DATA NUM_DEV NUM_EVAL fresh|reuse: DATA/{tr_no_dev,dev,eval1} (Kaldi dirs)
# from the LJSpeech-format DB_ROOT (local/data_prep.py: every wav checked), validated, and
# DATA/prepared_from naming the corpus and split it holds.
#   fresh (stage 0): always prepared.
#   reuse (stage 3): kept when DATA holds this split, prepared when it holds none; a DATA made
#   from another corpus or split is an error, never decoded in its place.
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 DB_ROOT DATA NUM_DEV NUM_EVAL fresh|reuse" 1>&2; exit 1; }
db_root=$1; data=$2; num_dev=$3; num_eval=$4; mode=$5

root=${db_root}
[ -d "${root}" ] && root=$(cd "${root}" && pwd -P)
split_id="${root} num_dev=${num_dev} num_eval=${num_eval}"

if [ "${mode}" = reuse ] && [ -f "${data}/dev/wav.scp" ] && [ -f "${data}/eval1/wav.scp" ]; then
    if [ -f "${data}/prepared_from" ] && [ "$(cat "${data}/prepared_from")" != "${split_id}" ]; then
        echo "$0: ${data}/ holds the split of $(cat "${data}/prepared_from"), not of ${split_id}:" \
             "pass the options it was made with, or rerun stage 0 (--stage 0) for this one" 1>&2
        exit 1
    fi
    exit 0
fi
if [ "${mode}" = reuse ]; then
    [ -f "${db_root}/metadata.csv" ] || { echo "$0: ${data}/dev and ${data}/eval1 do not exist, and" \
        "--db_root ${db_root} holds no LJSpeech (metadata.csv): pass --db_root DIR, or run stage -1" \
        "(./run.sh --stage -1 --stop_stage 0) to download LJSpeech" 1>&2; exit 1; }
    echo "$0: no ${data}/ split yet: preparing it from ${db_root} (stage 0)"
fi
python3 local/data_prep.py --db_root "${db_root}" --out "${data}" --num_dev "${num_dev}" --num_eval "${num_eval}"
for set in tr_no_dev dev eval1; do
    utils/validate_data_dir.sh "${data}/${set}"
done
echo "${split_id}" > "${data}/prepared_from"
