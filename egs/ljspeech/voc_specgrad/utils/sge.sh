#!/usr/bin/env bash
# Grid Engine job runner with the run.pl contract (see run_local.sh): each job is a
# blocking `qsub -sync y` submission of the command, array jobs in parallel.
#   sge.sh [--gpu N] [--num_threads N] [--mem X] [JOB=1:N] LOG COMMAND...
# Site options for qsub: $SGE_EXTRA_OPTS (e.g. "-q all.q"). Not exercised by the tests.
set -u
opts=(-sync y -V -cwd -b y -j y -o /dev/null)
while [ $# -gt 0 ]; do
    case "$1" in
    --gpu) [ "$2" -gt 0 ] && opts+=(-l "gpu=$2"); shift 2 ;;
    --num_threads) opts+=(-pe smp "$2"); shift 2 ;;
    --mem) opts+=(-l "mem_free=$2,ram_free=$2"); shift 2 ;;
    --num_nodes|--max_jobs_run) shift 2 ;;
    *) break ;;
    esac
done
job=()
[[ "${1:-}" =~ ^[A-Za-z_]+=[0-9]+:[0-9]+$ ]] && { job=("$1"); shift; }
log=$1; shift
# shellcheck disable=SC2086
exec "$(dirname "$0")/run_local.sh" "${job[@]}" "${log}" qsub "${opts[@]}" ${SGE_EXTRA_OPTS:-} "$@"
