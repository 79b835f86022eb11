#!/usr/bin/env bash
# SpecGrad vocoder on LJSpeech, ESPnet-style. Stages (--stage N --stop_stage M):
#  -1 the corpus: download LJSpeech-1.1 (skipped when --db_root holds metadata.csv and wavs/),
#     or --demo / --shared's clips as an LJSpeech folder
#   0 data prep: data/{tr_no_dev,dev,eval1} (Kaldi dirs), every wav checked
#   1 collect stats (mel and noise-level statistics), nj jobs
#   2 training (ESPnet trainer; --ngpu, --num_nodes, --resume, --train_args)
#   3 decoding of dev and eval1 (analysis-synthesis; --inference_args)
#   4 scoring -> exp/<tag>/RESULTS.md
#   5 text -> mel with an ESPnet TTS model (--tts_exp DIR or --tts_model_tag TAG)
#   6 vocoding those mels with SpecGrad, scored against the recordings (DTW metrics)
#   7 packing for the model zoo (exp/<tag>/packed/*.zip)
#   8 upload to the Hugging Face hub (off unless --skip_upload_hf false)
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

stage=-1
stop_stage=7
_default_db_root=downloads/LJSpeech-1.1  # not an option: the one --db_root whose folder stage -1 creates
db_root=${_default_db_root}
conf=conf/train_specgrad_frame.yaml  # ESPnet training config (its "preset" names the model): the family shipped
tag=""                               # exp/<tag>; default: derived from --conf
nj=4                                 # collect-stats jobs
inference_nj=2                       # decoding jobs
ngpu=0
num_nodes=1
resume=true
train_args=""
inference_args=""                    # e.g. "--schedule WG-3 --batch_size 4"
inference_model=""                   # default: valid.pesq.best.pth (valid.mel_l1.best.pth without pesq)
pretrained=""                        # e.g. ljspeech: stages 3-4 use the model shipped with the plugin
corpus_cmd=local/download.sh         # stage -1: CMD DB_ROOT puts an LJSpeech folder at DB_ROOT
corpus_name=""                       # how RESULTS.md and the model card name the corpus (default: db_root's name)
num_dev=250
num_eval=250
expdir=exp
tts_exp=""                           # local ESPnet TTS exp: config.yaml + a *.pth model
tts_model_file=""                    # default: the newest *.pth in --tts_exp
tts_model_tag=""                     # model-zoo tag (needs network)
tts_inference_args="--maxlenratio 10.0 --minlenratio 0.0"
tts_sets="eval1"
hf_repo=""                           # e.g. your_name/ljspeech_specgrad_frame
hf_datasets=""                       # the card's Hugging Face dataset ids, e.g. keithito/lj_speech
skip_upload_hf=true
demo=false                           # true: conf/demo.sh's defaults (the 12 LJ Speech clips in demo/)
shared=false                         # true: conf/shared.sh's defaults (ljspeech_mini + ljspeech_eval as eval1)

help_message="Usage: $0 [options]
  --stage N --stop_stage M     stages to run (-1..8; default ${stage}..${stop_stage})
  --db_root DIR                LJSpeech-1.1 folder (default ${db_root})
  --conf FILE                  training config (default ${conf})
  --tag NAME                   experiment name (default: from --conf)
  --nj N --inference_nj N      parallel jobs for stats / decoding (${nj} / ${inference_nj})
  --ngpu N --num_nodes N       GPUs per node and nodes for training (${ngpu} / ${num_nodes})
  --resume true|false          continue training from exp/<tag>/checkpoint.pth (${resume})
  --train_args \"...\"           extra options for specgrad_plugin.bin.train
  --inference_args \"...\"       extra options for specgrad_plugin.bin.decode
  --inference_model NAME       checkpoint in exp/<tag> to decode with (default: valid.pesq.best.pth,
                               or valid.mel_l1.best.pth where pesq is not installed)
  --pretrained NAME            stages 3-4 decode with the model shipped in the plugin (specgrad/NAME)
                               when exp/<tag> holds no trained model (stage 3 prepares data/ from
                               --db_root when it is missing); to fine-tune it first, use
                               --conf conf/finetune_specgrad_ljspeech.yaml (what --demo does)
  --num_dev N --num_eval N     held-out clips (${num_dev} / ${num_eval})
  --expdir DIR                 (${expdir})
  --tts_exp DIR                ESPnet TTS exp for stages 5-6 (config.yaml + model .pth)
  --tts_model_tag TAG          or a model-zoo tag (downloads)
  --hf_repo USER/NAME          Hugging Face repo for stage 8
  --hf_datasets IDS            comma-separated Hugging Face dataset ids the run trained on, for
                               the card's front matter (default: none listed)
  --skip_upload_hf true|false  stage 8 builds the folder only (${skip_upload_hf})
  --demo true|false            quick offline demo on the 12 LJ Speech clips shipped in demo/:
                               the shipped model fine-tuned 50 steps on 8, then 2 dev + 2 eval
                               decoded and scored; its defaults are conf/demo.sh (${demo})
  --shared true|false          train on the shared clips: ljspeech_mini (29 train, 3 dev) and
                               ljspeech_eval as eval1 (\$SPECGRAD_DATA or ../shared/data); its
                               defaults are conf/shared.sh (${shared})
  --config FILE                read options from a shell file (as conf/demo.sh); later options win
Backends: cmd.sh (SPECGRAD_BACKEND=local|slurm|sge)."

log "$0 $*"
# --demo true / --shared true: conf/demo.sh / conf/shared.sh hold that mode's defaults; they
# are read before the command line, so an option given there still wins over them.
for _mode in demo shared; do
    if [[ " $* " == *" --${_mode} true "* ]]; then
        # shellcheck disable=SC1090
        . "conf/${_mode}.sh"
    fi
done
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "${help_message}" 1>&2; exit 1; }
for _opt in stage stop_stage nj inference_nj; do  # numbers the stage tests compare: a typo ran nothing, rc 0
    [[ "${!_opt}" =~ ^-?[0-9]+$ ]] || { log "Error: --${_opt} ${!_opt}: expected an integer"; exit 1; }
done
. ./path.sh
. ./cmd.sh

[ -n "${tag}" ] || tag=$(basename "${conf}" .yaml)
[ -n "${corpus_name}" ] || corpus_name=$(basename "${db_root}")
exp=${expdir}/${tag}
stats=${expdir}/${tag}_stats
data=data

if [ ${stage} -le -1 ] && [ ${stop_stage} -ge -1 ]; then
    log "Stage -1: the corpus into ${db_root} (${corpus_cmd})"
    [ "${db_root}" != "${_default_db_root}" ] || mkdir -p "$(dirname "${db_root}")"  # downloads/, the recipe's own
    ${corpus_cmd} "${db_root}"
fi

if [ ${stage} -le 0 ] && [ ${stop_stage} -ge 0 ]; then
    log "Stage 0: data prep (${num_dev} dev, ${num_eval} eval1 held out)"
    local/data_prep.sh "${db_root}" "${data}" "${num_dev}" "${num_eval}" fresh
fi

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "Stage 1: collect statistics with ${nj} jobs -> ${stats}"
    # shellcheck disable=SC2086
    local/collect_stats.sh "${nj}" "${conf}" "${data}" "${stats}" ${train_args}
fi

if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
    log "Stage 2: training -> ${exp} (ngpu=${ngpu}, num_nodes=${num_nodes})"
    mkdir -p "${exp}"
    _opts=(--config "${conf}" --output_dir "${exp}" --resume "${resume}" --ngpu "${ngpu}"
        --train_data_path_and_name_and_type "${data}/tr_no_dev/wav.scp,speech,sound"
        --valid_data_path_and_name_and_type "${data}/dev/wav.scp,speech,sound"
        --train_shape_file "${stats}/train/speech_shape" --valid_shape_file "${stats}/valid/speech_shape"
        --model_conf "prior_stats_file=${stats}/train/energy_hist_stats.npz"
        --model_conf "mel_stats_file=${stats}/train/feats_stats.npz")
    _dist=()
    if [ "${num_nodes}" -gt 1 ]; then
        # One task per node (the slurm backend's srun); each spawns ngpu ranks, which meet
        # through a file on the shared exp dir. ESPnet reads node ranks from Slurm.
        [ "${train_cmd}" != utils/run_local.sh ] \
            || { log "Error: --num_nodes ${num_nodes} needs a scheduler backend (SPECGRAD_BACKEND=slurm)"; exit 1; }
        _dist=(--multiprocessing_distributed true --dist_launcher slurm
            --dist_init_method "file://$(cd "${exp}" && pwd)/.dist_init_$(date +%s)")
    elif [ "${ngpu}" -gt 1 ]; then
        _dist=(--multiprocessing_distributed true)  # one process per GPU on this node
    fi
    # shellcheck disable=SC2206
    _cmd=(python3 -m specgrad_plugin.bin.train "${_opts[@]}" "${_dist[@]}" ${train_args})
    echo "cd $(pwd) && ${cuda_cmd} --gpu ${ngpu} --num_nodes ${num_nodes} ${exp}/train.log ${_cmd[*]}" \
        > "${exp}/run_train.sh"
    ${cuda_cmd} --gpu "${ngpu}" --num_nodes "${num_nodes}" "${exp}/train.log" "${_cmd[@]}"
fi

# The checkpoint stages 3, 4 and 7 use: the best validation PESQ (mel-L1 rises while PESQ
# and voicing still improve: docs/low_band.md), else the best mel-L1 (pesq not installed).
if [ -z "${inference_model}" ]; then
    inference_model=valid.pesq.best.pth
    if [ ! -e "${exp}/${inference_model}" ] && [ -e "${exp}/valid.mel_l1.best.pth" ]; then
        inference_model=valid.mel_l1.best.pth
    fi
fi

shipped_only() {  # true when stages 3-4 decode with the shipped model as it is (none trained here)
    [ -n "${pretrained}" ] && [ ! -f "${exp}/${inference_model}" ]
}

decode_set() {  # decode_set SCP_OR_FEATS NAME TYPE OUTDIR
    local src=$1 name=$2 type=$3 out=$4
    local n=$(( inference_nj < $(wc -l < "${src}") ? inference_nj : $(wc -l < "${src}") ))
    local _model="--model_file ${exp}/${inference_model} --train_config ${exp}/config.yaml"
    if shipped_only; then _model="--model_tag specgrad/${pretrained}"; fi
    utils/split_scp.sh "${src}" "${out}/split" "${n}"
    # shellcheck disable=SC2086
    ${decode_cmd} JOB=1:"${n}" "${out}/log/decode.JOB.log" \
        python3 -m specgrad_plugin.bin.decode ${_model} --ngpu 0 \
            --data_path_and_name_and_type "${out}/split/JOB.scp,${name},${type}" \
            --output_dir "${out}/output.JOB" ${inference_args}
    # this run's jobs only: output.J of an earlier run with more jobs may hold the same ids
    for j in $(seq 1 "${n}"); do cat "${out}/output.${j}/wav.scp"; done | LC_ALL=C sort > "${out}/wav.scp"
    grep -h "^RTF" "${out}"/log/decode.*.log || true
}

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    # Decode the split of --db_root, never whatever data/ holds from another run.
    local/data_prep.sh "${db_root}" "${data}" "${num_dev}" "${num_eval}" reuse
    for set in dev eval1; do
        log "Stage 3: decoding ${set} -> ${exp}/decode_${set}"
        decode_set "${data}/${set}/wav.scp" speech sound "${exp}/decode_${set}"
    done
fi

if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ]; then
    log "Stage 4: scoring -> ${exp}/RESULTS.md"
    if shipped_only; then _what="specgrad/${pretrained} (shipped)"
    else _what="${exp}/${inference_model}${pretrained:+, fine-tuned from specgrad/${pretrained}}"; fi
    python3 -m specgrad_plugin.bin.report --exp "${exp}" --data "${data}" --sets dev eval1 \
        --model "${_what}" --corpus "${corpus_name}" --inference_args="${inference_args}"
fi

if [ ${stage} -le 5 ] && [ ${stop_stage} -ge 5 ]; then
    if [ -n "${tts_model_tag}" ]; then
        log "Stage 5: fetching TTS model ${tts_model_tag} (network)"
        eval "$(python3 local/fetch_tts_model.py "${tts_model_tag}" "${expdir}/tts_zoo")"
    elif [ -n "${tts_exp}" ]; then
        tts_config=${tts_exp}/config.yaml
        [ -n "${tts_model_file}" ] || tts_model_file=$(ls -t "${tts_exp}"/*.pth 2>/dev/null | head -1 || true)
    else
        log "Stage 5: no --tts_exp or --tts_model_tag given: skipping stages 5-6"
        tts_sets=""
    fi
    if [ -n "${tts_sets}" ]; then
        [ -f "${tts_config}" ] && [ -f "${tts_model_file}" ] \
            || { log "Error: TTS config '${tts_config}' or model '${tts_model_file}' not found"; exit 1; }
        python3 local/check_tts.py "${tts_config}" "${exp}/config.yaml"
        for set in ${tts_sets}; do
            log "Stage 5: text -> mel for ${set} with ${tts_model_file}"
            # shellcheck disable=SC2086
            ${decode_cmd} "${exp}/tts_${set}/log/tts_inference.log" \
                python3 -m espnet2.bin.tts_inference --ngpu 0 --train_config "${tts_config}" \
                    --model_file "${tts_model_file}" --data_path_and_name_and_type "${data}/${set}/text,text,text" \
                    --output_dir "${exp}/tts_${set}/mel" ${tts_inference_args}
        done
    fi
fi

if [ ${stage} -le 6 ] && [ ${stop_stage} -ge 6 ]; then
    for set in ${tts_sets}; do
        mel=${exp}/tts_${set}/mel
        feats=${mel}/denorm/feats.scp; [ -f "${feats}" ] || feats=${mel}/norm/feats.scp
        log "Stage 6: vocoding ${feats} and scoring against the recordings"
        decode_set "${feats}" feats npy "${exp}/tts_${set}/specgrad"
        python3 -m specgrad_plugin.bin.score --aligned false --ref "${data}/${set}/wav.scp" \
            --gen "${exp}/tts_${set}/specgrad/wav.scp" --out "${exp}/tts_${set}/specgrad/score"
        { echo; echo "## TTS ${set}: SpecGrad on the TTS model's mels of ${set}'s texts, against the recordings (DTW metrics)"
          echo; cat "${exp}/tts_${set}/specgrad/score/scores.md"; } >> "${exp}/RESULTS.md"
    done
fi

if [ ${stage} -le 7 ] && [ ${stop_stage} -ge 7 ]; then
    log "Stage 7: packing ${exp}/${inference_model}"
    _extra=("${stats}/train/feats_stats.npz" "${stats}/train/energy_hist_stats.npz")
    [ -f "${exp}/RESULTS.md" ] && _extra+=("${exp}/RESULTS.md")
    [ -d "${exp}/images" ] && _extra+=("${exp}/images")
    python3 local/pack.py "${exp}" "${exp}/${inference_model}" "${exp}/packed/${tag}.zip" "${_extra[@]}"
fi

if [ ${stage} -le 8 ] && [ ${stop_stage} -ge 8 ]; then
    [ -n "${hf_repo}" ] || { log "Error: stage 8 needs --hf_repo USER/NAME"; exit 1; }
    log "Stage 8: Hugging Face folder for ${hf_repo} (upload: $([ "${skip_upload_hf}" = true ] && echo no || echo yes))"
    local/make_hf_repo.sh "${exp}/packed/${tag}.zip" "${exp}/hf_${tag}" "${hf_repo}" "${data}/tr_no_dev/wav.scp" \
        "${corpus_name}" "${exp}/RESULTS.md" "${hf_datasets}"
    if [ "${skip_upload_hf}" = false ]; then
        command -v git-lfs >/dev/null || { log "Error: git-lfs is needed to upload"; exit 1; }
        (cd "${exp}/hf_${tag}" && git init -q && git lfs install --local && git lfs track "*.pth" "*.zip" "*.npz" \
            && git add -A && git commit -qm "SpecGrad ${tag}" \
            && git push -f "https://huggingface.co/${hf_repo}" HEAD:main)
    fi
fi
if [ "${demo}" = true ] && [ -s "${exp}/decode_eval1/wav.scp" ] && [ -f "${exp}/RESULTS.md" ]; then
    log "Demo done: listen to $(head -1 "${exp}/decode_eval1/wav.scp" | cut -d' ' -f2); scores in ${exp}/RESULTS.md"
fi
log "Successfully finished. [elapsed=${SECONDS}s]"
