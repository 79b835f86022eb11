#!/usr/bin/env bash
# collect_stats.sh NJ CONF DATA STATS [TRAIN_ARGS...]: ESPnet's collect-stats of
# specgrad_plugin.bin.train over DATA/tr_no_dev and DATA/dev in up to NJ jobs (${train_cmd},
# cmd.sh), aggregated into STATS/{train,valid}/ (feats_stats.npz, energy_hist_stats.npz,
# speech_shape), which training reads.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 NJ CONF DATA STATS [TRAIN_ARGS...]" 1>&2; exit 1; }
nj=$1; conf=$2; data=$3; stats=$4; shift 4
: "${train_cmd:?run from run.sh, which sources cmd.sh}"
for _set in tr_no_dev dev; do
    [ -s "${data}/${_set}/wav.scp" ] || { echo "$0: ${data}/${_set}/wav.scp is missing or empty: stage 0 writes it (run.sh --stage 0, or --stage -1 for the corpus too)" 1>&2; exit 1; }
done
_nj=$(( nj < $(wc -l < "${data}/dev/wav.scp") ? nj : $(wc -l < "${data}/dev/wav.scp") ))
rm -rf "${stats}/split" "${stats}/logdir"
utils/split_scp.sh "${data}/tr_no_dev/wav.scp" "${stats}/split/train" "${_nj}"
utils/split_scp.sh "${data}/dev/wav.scp" "${stats}/split/valid" "${_nj}"
${train_cmd} JOB=1:"${_nj}" "${stats}/logdir/stats.JOB.log" \
    python3 -m specgrad_plugin.bin.train --collect_stats true --config "${conf}" --ngpu 0 \
        --train_data_path_and_name_and_type "${data}/tr_no_dev/wav.scp,speech,sound" \
        --valid_data_path_and_name_and_type "${data}/dev/wav.scp,speech,sound" \
        --train_shape_file "${stats}/split/train/JOB.scp" --valid_shape_file "${stats}/split/valid/JOB.scp" \
        --output_dir "${stats}/logdir/stats.JOB" "$@"
_dirs=()
for i in $(seq "${_nj}"); do _dirs+=(--input_dir "${stats}/logdir/stats.${i}"); done
python3 -m espnet2.bin.aggregate_stats_dirs "${_dirs[@]}" --output_dir "${stats}"
