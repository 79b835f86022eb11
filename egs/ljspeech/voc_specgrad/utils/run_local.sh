#!/usr/bin/env bash
# Local job runner with the run.pl contract:
#   run_local.sh [--gpu N] [--num_threads N] [--mem X] [JOB=1:N] LOG COMMAND...
# With JOB=a:b the command runs once per job id, in parallel, with every "JOB" in
# LOG and COMMAND replaced by the id. Output goes to LOG (its folder is created),
# headed by the command and footed by its exit status. Exits non-zero if any job
# failed, naming the logs to read. --gpu/--num_threads/--mem are accepted and ignored.
set -u
while [ $# -gt 0 ]; do
    case "$1" in
    --gpu|--num_threads|--mem|--max_jobs_run|--num_nodes) shift 2 ;;
    *) break ;;
    esac
done
first=1; last=1; jobvar=""
if [[ "${1:-}" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
    jobvar=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}
    shift
fi
[ $# -lt 2 ] && { echo "usage: $0 [--gpu N] [JOB=1:N] LOG COMMAND..." 1>&2; exit 1; }
log=$1; shift
pids=(); logs=()
for ((id = first; id <= last; id++)); do
    this_log=$log; args=("$@")
    if [ -n "${jobvar}" ]; then
        this_log=${log//${jobvar}/${id}}
        for i in "${!args[@]}"; do args[$i]=${args[$i]//${jobvar}/${id}}; done
    fi
    mkdir -p "$(dirname "${this_log}")"
    (
        echo "# $(printf '%q ' "${args[@]}")" > "${this_log}"
        echo "# started at $(date)" >> "${this_log}"
        start=$(date +%s)
        bash -c 'exec "$@"' _ "${args[@]}" >> "${this_log}" 2>&1
        rc=$?
        echo "# accounting: time=$(( $(date +%s) - start )) threads=1" >> "${this_log}"
        echo "# ended (code ${rc}) at $(date)" >> "${this_log}"
        exit ${rc}
    ) &
    pids+=($!); logs+=("${this_log}")
done
failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "$0: job failed, see ${logs[$i]}" 1>&2
        failed=$((failed + 1))
    fi
done
[ ${failed} -eq 0 ] || { echo "$0: ${failed} of ${#pids[@]} jobs failed" 1>&2; exit 1; }
