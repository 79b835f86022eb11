# Job runners for run.sh, with the run.pl contract:  CMD [--gpu N] [JOB=1:N] LOG COMMAND...
# Pick one backend ("local" by default, or set SPECGRAD_BACKEND=slurm|sge).
#   local: parallel processes on this machine (utils/run_local.sh)
#   slurm: one blocking srun step per job (utils/slurm.sh; site options: $SLURM_EXTRA_OPTS)
#   sge:   one blocking qsub -sync y per job (utils/sge.sh; site options: $SGE_EXTRA_OPTS)
# To use your own Kaldi/ESPnet slurm.pl or queue.pl, set the three variables to it.
backend=${SPECGRAD_BACKEND:-local}
case "${backend}" in
    local) export train_cmd="utils/run_local.sh"; export cuda_cmd="utils/run_local.sh"
           export decode_cmd="utils/run_local.sh" ;;
    slurm) export train_cmd="utils/slurm.sh"; export cuda_cmd="utils/slurm.sh"
           export decode_cmd="utils/slurm.sh" ;;
    sge)   export train_cmd="utils/sge.sh"; export cuda_cmd="utils/sge.sh"
           export decode_cmd="utils/sge.sh" ;;
    *) echo "cmd.sh: unknown backend '${backend}' (local|slurm|sge)" 1>&2; return 1 ;;
esac
