# Environment for run.sh: the plugin and ESPnet come from the active Python (pip install -e ../../..).
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONDONTWRITEBYTECODE=1
python3 -c "import specgrad_plugin" 2>/dev/null || {
    echo "path.sh: specgrad_plugin is not importable: run 'pip install -e .' at the repository top" 1>&2
    return 1
}
