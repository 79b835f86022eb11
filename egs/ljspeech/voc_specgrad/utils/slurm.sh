#!/usr/bin/env bash
# Slurm job runner with the run.pl contract (see run_local.sh): each job is one
# blocking `srun` step, array jobs in parallel, so the recipe waits for them.
#   slurm.sh [--gpu N] [--num_threads N] [--mem X] [--num_nodes N] [JOB=1:N] LOG COMMAND...
# Site options for srun: $SLURM_EXTRA_OPTS (e.g. "--partition=gpu --time=2-00:00").
# Not exercised by the tests (no Slurm on the CI machine).
set -u
opts=(--export=ALL)
while [ $# -gt 0 ]; do
    case "$1" in
    --gpu) [ "$2" -gt 0 ] && opts+=("--gres=gpu:$2"); shift 2 ;;
    --num_threads) opts+=("--cpus-per-task=$2"); shift 2 ;;
    --mem) opts+=("--mem=$2"); shift 2 ;;
    --num_nodes) opts+=("--nodes=$2" "--ntasks-per-node=1"); shift 2 ;;
    --max_jobs_run) shift 2 ;;
    *) break ;;
    esac
done
job=()
[[ "${1:-}" =~ ^[A-Za-z_]+=[0-9]+:[0-9]+$ ]] && { job=("$1"); shift; }
log=$1; shift
# shellcheck disable=SC2086
exec "$(dirname "$0")/run_local.sh" "${job[@]}" "${log}" srun "${opts[@]}" ${SLURM_EXTRA_OPTS:-} "$@"
