#!/usr/bin/env bash
# SpecGrad vocoder on LJSpeech, ESPnet-style. Stages (--stage N --stop_stage M):
#  -1 download LJSpeech-1.1 (skipped when --db_root holds metadata.csv and wavs/)
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
db_root=downloads/LJSpeech-1.1
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
num_dev=250
num_eval=250
dumpdir=dump
expdir=exp
tts_exp=""                           # local ESPnet TTS exp: config.yaml + a *.pth model
tts_model_file=""                    # default: the newest *.pth in --tts_exp
tts_model_tag=""                     # model-zoo tag (needs network)
tts_inference_args="--maxlenratio 10.0 --minlenratio 0.0"
tts_sets="eval1"
hf_repo=""                           # e.g. your_name/ljspeech_specgrad_frame
hf_datasets=""                       # the card's Hugging Face dataset ids, e.g. keithito/lj_speech
skip_upload_hf=true
demo=false                           # true: the 12 LJ Speech clips in demo/, stages -1..4, on CPU
shared=false                         # true: the shared clips (ljspeech_mini + ljspeech_eval as eval1)

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
  --dumpdir DIR --expdir DIR   (${dumpdir} / ${expdir})
  --tts_exp DIR                ESPnet TTS exp for stages 5-6 (config.yaml + model .pth)
  --tts_model_tag TAG          or a model-zoo tag (downloads)
  --hf_repo USER/NAME          Hugging Face repo for stage 8
  --hf_datasets IDS            comma-separated Hugging Face dataset ids the run trained on, for
                               the card's front matter (default: none listed)
  --skip_upload_hf true|false  stage 8 builds the folder only (${skip_upload_hf})
  --demo true|false            quick offline demo on the 12 LJ Speech clips shipped in demo/:
                               the shipped model fine-tuned 50 steps on 8, then 2 dev + 2 eval
                               decoded and scored (${demo})
  --shared true|false          train on the shared clips: ljspeech_mini (29 train, 3 dev) and
                               ljspeech_eval as eval1 (\$SPECGRAD_DATA or ../shared/data) (${shared})
Backends: cmd.sh (SPECGRAD_BACKEND=local|slurm|sge)."

log "$0 $*"
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "${help_message}" 1>&2; exit 1; }
. ./path.sh
. ./cmd.sh

if [ "${demo}" = true ]; then
    db_root=${dumpdir}/demo_db; num_dev=2; num_eval=2; nj=2; inference_nj=2
    stop_stage=$(( stop_stage < 4 ? stop_stage : 4 )); tag=${tag:-demo}
    if python3 -c "from specgrad_plugin import pretrained; pretrained.resolve('ljspeech')" 2>/dev/null; then
        # The shipped LJSpeech model, fine-tuned for 50 steps on the demo clips, then decoded.
        pretrained=${pretrained:-ljspeech}; conf=conf/finetune_specgrad_ljspeech.yaml
    else
        train_args="--max_epoch 2 --num_iters_per_epoch 100 ${train_args}"
        inference_args="--schedule WG-3 ${inference_args}"
    fi
    export OMP_NUM_THREADS=2
    python3 local/make_demo_db.py "${db_root}"
fi
if [ "${shared}" = true ]; then
    db_root=${dumpdir}/shared_db; num_dev=3; num_eval=5; nj=$(( nj < 3 ? nj : 3 ))
    python3 local/make_shared_db.py "${db_root}"
fi
[ -n "${tag}" ] || tag=$(basename "${conf}" .yaml)
exp=${expdir}/${tag}
stats=${expdir}/${tag}_stats
data=data
if [ "${demo}" = true ]; then corpus="the LJ Speech demo clips in demo/"
elif [ "${shared}" = true ]; then corpus="the shared LJ Speech clips (ljspeech_mini, ljspeech_eval)"
else corpus=$(basename "${db_root}"); fi

split_id() {  # which corpus and split data/ holds: stage 0 writes it, stage 3 compares
    local root=${db_root}
    [ -d "${root}" ] && root=$(cd "${root}" && pwd -P)
    echo "${root} num_dev=${num_dev} num_eval=${num_eval}"
}

prepare_data() {
    python3 local/data_prep.py --db_root "${db_root}" --out "${data}" --num_dev "${num_dev}" --num_eval "${num_eval}"
    for set in tr_no_dev dev eval1; do
        utils/validate_data_dir.sh "${data}/${set}"
    done
    split_id > "${data}/prepared_from"
}

if [ ${stage} -le -1 ] && [ ${stop_stage} -ge -1 ]; then
    log "Stage -1: download LJSpeech into ${db_root}"
    local/download.sh "${db_root}"
fi

if [ ${stage} -le 0 ] && [ ${stop_stage} -ge 0 ]; then
    log "Stage 0: data prep (${num_dev} dev, ${num_eval} eval1 held out)"
    prepare_data
fi

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "Stage 1: collect statistics with ${nj} jobs -> ${stats}"
    _nj=$(( nj < $(wc -l < "${data}/dev/wav.scp") ? nj : $(wc -l < "${data}/dev/wav.scp") ))
    rm -rf "${stats}/split" "${stats}/logdir"
    utils/split_scp.sh "${data}/tr_no_dev/wav.scp" "${stats}/split/train" "${_nj}"
    utils/split_scp.sh "${data}/dev/wav.scp" "${stats}/split/valid" "${_nj}"
    # shellcheck disable=SC2086
    ${train_cmd} JOB=1:"${_nj}" "${stats}/logdir/stats.JOB.log" \
        python3 -m specgrad_plugin.bin.train --collect_stats true --config "${conf}" --ngpu 0 \
            --train_data_path_and_name_and_type "${data}/tr_no_dev/wav.scp,speech,sound" \
            --valid_data_path_and_name_and_type "${data}/dev/wav.scp,speech,sound" \
            --train_shape_file "${stats}/split/train/JOB.scp" --valid_shape_file "${stats}/split/valid/JOB.scp" \
            --output_dir "${stats}/logdir/stats.JOB" ${train_args}
    _dirs=""
    for i in $(seq "${_nj}"); do _dirs+=" --input_dir ${stats}/logdir/stats.${i}"; done
    # shellcheck disable=SC2086
    python3 -m espnet2.bin.aggregate_stats_dirs ${_dirs} --output_dir "${stats}"
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

decode_set() {  # decode_set SCP_OR_FEATS NAME TYPE OUTDIR
    local src=$1 name=$2 type=$3 out=$4
    local n=$(( inference_nj < $(wc -l < "${src}") ? inference_nj : $(wc -l < "${src}") ))
    local _model="--model_file ${exp}/${inference_model} --train_config ${exp}/config.yaml"
    if [ -n "${pretrained}" ] && [ ! -f "${exp}/${inference_model}" ]; then
        _model="--model_tag specgrad/${pretrained}"  # not fine-tuned here: the shipped model as it is
    fi
    utils/split_scp.sh "${src}" "${out}/split" "${n}"
    # shellcheck disable=SC2086
    ${decode_cmd} JOB=1:"${n}" "${out}/log/decode.JOB.log" \
        python3 -m specgrad_plugin.bin.decode ${_model} --ngpu 0 \
            --data_path_and_name_and_type "${out}/split/JOB.scp,${name},${type}" \
            --output_dir "${out}/output.JOB" ${inference_args}
    cat "${out}"/output.*/wav.scp | LC_ALL=C sort > "${out}/wav.scp"
    grep -h "^RTF" "${out}"/log/decode.*.log || true
}

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    # Decode the split of --db_root, never whatever data/ holds from another run.
    if [ ! -f "${data}/dev/wav.scp" ] || [ ! -f "${data}/eval1/wav.scp" ]; then
        [ -f "${db_root}/metadata.csv" ] || { log "Error: stage 3 decodes ${data}/dev and ${data}/eval1, which do not"\
            "exist, and --db_root ${db_root} holds no LJSpeech (metadata.csv): pass --db_root DIR, or run stage -1"\
            "(./run.sh --stage -1 --stop_stage 0) to download LJSpeech"; exit 1; }
        log "Stage 3: no ${data}/ split yet: preparing it from ${db_root} (stage 0)"
        prepare_data
    elif [ -f "${data}/prepared_from" ] && [ "$(cat "${data}/prepared_from")" != "$(split_id)" ]; then
        log "Error: ${data}/ holds the split of $(cat "${data}/prepared_from"), not of $(split_id):"\
            "pass the options it was made with, or rerun stage 0 (--stage 0) for this one"
        exit 1
    fi
    for set in dev eval1; do
        log "Stage 3: decoding ${set} -> ${exp}/decode_${set}"
        decode_set "${data}/${set}/wav.scp" speech sound "${exp}/decode_${set}"
    done
fi

if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ]; then
    log "Stage 4: scoring -> ${exp}/RESULTS.md"
    for set in dev eval1; do
        python3 -m specgrad_plugin.bin.score --ref "${data}/${set}/wav.scp" --gen "${exp}/decode_${set}/wav.scp" \
            --out "${exp}/decode_${set}/score"
    done
    {
        echo "# ${tag}: SpecGrad analysis-synthesis of ${corpus}"
        echo
        echo "Each recording's log-mel vocoded back to audio and scored against the recording."
        echo
        if [ -f "${exp}/${inference_model}" ]; then _what="${exp}/${inference_model}"; else _what="specgrad/${pretrained} (shipped)"; fi
        [ -z "${pretrained}" ] || [ ! -f "${exp}/${inference_model}" ] || _what+=", fine-tuned from specgrad/${pretrained}"
        echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); model: ${_what}; inference_args: '${inference_args}'"
        echo "- vocoded wavs: ${exp}/decode_<set>/output.*/wav/; reference vs generated log-mel PNGs: ${exp}/decode_<set>/score/"
        echo "- specgrad_plugin $(python3 -c 'import specgrad_plugin; print(specgrad_plugin.__version__)'),"\
             "espnet $(python3 -c 'import espnet; print(espnet.__version__)'), torch $(python3 -c 'import torch; print(torch.__version__)')"
        for set in dev eval1; do
            echo; echo "## ${set}: $(wc -l < "${data}/${set}/wav.scp") utterances of ${corpus} (mean, then each)"; echo
            cat "${exp}/decode_${set}/score/scores.md"
        done
    } > "${exp}/RESULTS.md"
    cat "${exp}/RESULTS.md"
    _mean=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['mean']; print(', '.join(f'{k} {m[k]:.3f}' for k in ('pesq', 'stoi', 'mel_l1', 'vuv_error') if k in m))" "${exp}/decode_eval1/score/scores.json")
    log "Done: eval1 ($(wc -l < "${data}/eval1/wav.scp") utterances) vocoded by ${_what}: ${_mean}. Wavs and spectrograms: ${exp}/decode_eval1/, table: ${exp}/RESULTS.md"
fi

if [ ${stage} -le 5 ] && [ ${stop_stage} -ge 5 ]; then
    if [ -n "${tts_model_tag}" ]; then
        log "Stage 5: fetching TTS model ${tts_model_tag} (network)"
        eval "$(python3 -c "
from espnet_model_zoo.downloader import ModelDownloader
d = ModelDownloader('${expdir}/tts_zoo').download_and_unpack('${tts_model_tag}')
print(f\"tts_config={d['train_config']}; tts_model_file={d['model_file']}\")")"
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
    mkdir -p "${exp}/packed"
    _extra=("${stats}/train/feats_stats.npz" "${stats}/train/energy_hist_stats.npz")
    [ -f "${exp}/RESULTS.md" ] && _extra+=("${exp}/RESULTS.md")
    [ -d "${exp}/images" ] && _extra+=("${exp}/images")
    python3 local/pack.py "${exp}" "${exp}/${inference_model}" "${exp}/packed/${tag}.zip" "${_extra[@]}"
fi

if [ ${stage} -le 8 ] && [ ${stop_stage} -ge 8 ]; then
    [ -n "${hf_repo}" ] || { log "Error: stage 8 needs --hf_repo USER/NAME"; exit 1; }
    log "Stage 8: Hugging Face folder for ${hf_repo} (upload: $([ "${skip_upload_hf}" = true ] && echo no || echo yes))"
    local/make_hf_repo.sh "${exp}/packed/${tag}.zip" "${exp}/hf_${tag}" "${hf_repo}" "${data}/tr_no_dev/wav.scp" \
        "${corpus}" "${exp}/RESULTS.md" "${hf_datasets}"
    if [ "${skip_upload_hf}" = false ]; then
        command -v git-lfs >/dev/null || { log "Error: git-lfs is needed to upload"; exit 1; }
        (cd "${exp}/hf_${tag}" && git init -q && git lfs install --local && git lfs track "*.pth" "*.zip" "*.npz" \
            && git add -A && git commit -qm "SpecGrad ${tag}" \
            && git push -f "https://huggingface.co/${hf_repo}" HEAD:main)
    fi
fi
if [ "${demo}" = true ]; then
    log "Demo done: listen to $(head -1 "${exp}/decode_eval1/wav.scp" | cut -d' ' -f2); scores in ${exp}/RESULTS.md"
fi
log "Successfully finished. [elapsed=${SECONDS}s]"
