# Environment for run.sh: the plugin and ESPnet come from the python3 on PATH (an activated
# virtual environment, or the one pip install -e ../../.. installed into).
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONDONTWRITEBYTECODE=1
python3 -c "import specgrad_plugin" 2>/dev/null || {
    echo "path.sh: specgrad_plugin is not importable by $(command -v python3 || echo 'python3 (none on PATH)'):" \
         "activate the environment it is installed in (. .venv/bin/activate) or run 'pip install -e .'" \
         "at the repository top" 1>&2
    return 1
}
