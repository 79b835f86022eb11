"""bench/gpu_check.py, the prepared GPU check, runs end to end on the CPU so it cannot rot."""

import math
from pathlib import Path

from specgrad_plugin.scoring import scores_from_json
from tests.conftest import load_script

CHECK = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"


def test_gpu_check_runs_on_cpu_and_writes_its_tables(tmp_path):
    module = load_script(CHECK)
    out = tmp_path / "gc"
    # float32 only: bf16 autocast on a CPU without bf16 units takes minutes a step (test_precision covers it)
    assert module.main(["--device", "cpu", "--minutes", "0", "--amp", "false", "--repeats", "1",
                        "--presets", "frame", "--train_preset", "frame",
                        "--timing_steps", "1", "--eval_clips", "1", "--eval_seconds", "1", "--rtf_seconds", "1",
                        "--graphed_batches", "2", "--out", str(out)]) == 0
    result = scores_from_json(Path(f"{out}.json").read_text())  # null (an undefined score) as NaN
    assert [r["amp"] for r in result["training_speed"]] == ["fp32/tf32"]
    for row in result["training_speed"]:  # 16 crops of 64 frames per step
        assert abs(row["audio_s_per_s"] / row["steps_per_s"] - 16 * 64 * 256 / 22050) < 1e-6
    run = result["fixed_time_run"]
    assert run["steps"] == 1 and run["preset"] == "frame" and run["amp"] is False
    assert all(math.isfinite(v) for v in [*run["WG-6"].values(), *run["griffin_lim"].values()])
    assert [r["system"] for r in result["inference"]] == ["frame WG-3", "frame WG-6", "HiFi-GAN V1"]
    graphed = result["graphed"]  # on a CPU the "CUDA graph" row is the eager fallback
    assert [r["system"] for r in graphed] == ["eager, one by one", "batched (masked)", "CUDA graph", "HiFi-GAN V1"]
    assert all(r["batch"] == 2 for r in graphed) and graphed[2]["max_diff"] < 1e-4
    table = Path(f"{out}.md").read_text()
    assert table.startswith("# GPU check: CPU") and "| Griffin-Lim (32 it.) |" in table


def test_gpu_check_tables_show_the_parts_a_cut_short_run_finished():
    module = load_script(CHECK)
    result = {"device": "X", "torch": "t", "date": "d", "tf32": True, "eval_clips": 5, "rtf_seconds": 5.0,
              "training_speed": [{"preset": "base", "amp": "bfloat16", "steps_per_s": 2.0, "audio_s_per_s": 9.5}]}
    table = module.markdown(result)
    assert "| base | bfloat16 | 2.00 | 9.5 |" in table
    assert "Fixed-time run" not in table and "Inference" not in table
