"""The prior study's measure (bench/prior_study.py): one-step denoising SNR at fixed t; its
variants (bench/study_variants.py) change one choice each."""

from pathlib import Path

import pytest
import torch

from specgrad_plugin.features import crop_to_hop
from specgrad_plugin.synthetic import speech_like
from specgrad_plugin.vocoder import SpecGradVocoder
from tests.conftest import load_script

STUDY = Path(__file__).resolve().parents[1] / "bench" / "prior_study.py"


@pytest.fixture(scope="module")
def study():
    return load_script(STUDY)


@pytest.fixture(scope="module")
def variants(study):
    import study_variants  # bench/study_variants.py: loading prior_study put bench/ on sys.path

    return study_variants


def test_untrained_network_gains_nothing_and_noise_grows_with_t(study):
    """The output projection starts at zero (eps_theta = 0): the one-step estimate is then
    x_t / sqrt(abar_t) itself, so its SNR must equal the input SNR; both fall as t grows."""
    ref = crop_to_hop(torch.from_numpy(speech_like(1.0, 22050, seed=3)), 256)
    for variant in ("specgrad", "diffwave"):
        vocoder = SpecGradVocoder(study.variant_config(variant)).eval()
        mel = vocoder.features(ref[None])[0]
        pairs = [study.one_step_snr(vocoder, ref, mel, t, seed=5) for t in study.SNR_STEPS]
        inputs, outputs = [p[0] for p in pairs], [p[1] for p in pairs]
        assert outputs == pytest.approx(inputs, abs=1e-3)
        assert inputs == pytest.approx([study.input_snr(vocoder, ref, mel, t, seed=5) for t in study.SNR_STEPS])
        assert all(a > b for a, b in zip(inputs[:-1], inputs[1:], strict=True))


def test_oracle_noise_prediction_recovers_the_clip(study, monkeypatch):
    """A denoiser that returns the true noise must give a near-perfect x0 estimate: the SNR
    is limited only by float rounding, far above any trained model's."""
    ref = crop_to_hop(torch.from_numpy(speech_like(1.0, 22050, seed=4)), 256)
    vocoder = SpecGradVocoder(study.variant_config("specgrad")).eval()
    mel = vocoder.features(ref[None])[0]
    t = 20
    x0, x_t, abar = study.noisy_input(vocoder, ref, mel, t, seed=9)
    true_eps = (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()
    monkeypatch.setattr(vocoder.denoiser, "forward", lambda x, cond, level: true_eps)
    snr_in, snr_out = study.one_step_snr(vocoder, ref, mel, t, seed=9)
    assert snr_out > 60.0 > snr_in


def test_variants_differ_from_their_reference_in_one_choice(variants):
    """WaveNet variants change one setting of the specgrad run; frame variants change one
    section of the frame run, or of the variant they are compared with (the training
    levels are three keys of one choice); a choice named as set in two sections sets both."""
    for name in variants.VARIANTS:
        reference = variants.REFERENCES.get(name, "frame" if name.startswith("frame") else "specgrad")
        base = variants.variant_config(reference).to_dict()
        changed = [(s, k) for s, section in variants.variant_config(name).to_dict().items()
                   for k, v in section.items() if base[s][k] != v]
        if name == reference:
            assert not changed
        elif reference == "specgrad":
            assert len(changed) == 1, (name, changed)
        else:
            sections = {s for s, _ in changed}
            allowed = 2 if name in variants.CHOICES_OVER_TWO_SECTIONS else 1
            assert changed and len(sections) == allowed, (name, changed)


def test_frame_variants_keep_the_single_trunk_they_ran_with(variants):
    """The frame preset gained the low-band trunk after most variants ran: only the variant
    that names it may build it, whatever the preset says now."""
    for name in variants.VARIANTS:
        if name.startswith("frame"):
            names_it = "frame_low_band_hz" in variants.VARIANTS[name].get("denoiser", {})
            assert variants.variant_config(name).denoiser.frame_low_band_hz == (1000.0 if names_it else 0.0)
    assert variants.variant_config("frame_any_sample_melloss_low_exc").denoiser.frame_excitation
    assert not variants.variant_config("frame_any_sample_melloss_low").denoiser.frame_excitation


def test_extra_training_clips_refuse_held_out_clips_and_empty_lists(study, tmp_path):
    assert study.extra_training_clips(None, []) == []
    scp = tmp_path / "wav.scp"
    scp.write_text("a /x/ktub_da_0.wav\nb /x/ktub_de_0.wav\n")
    assert study.extra_training_clips(scp, [Path("/lj/LJ001-0030.wav")]) == [Path("/x/ktub_da_0.wav"),
                                                                           Path("/x/ktub_de_0.wav")]
    scp.write_text("a /x/ktub_da_0.wav\nb /elsewhere/LJ050-0029.wav\n")
    with pytest.raises(SystemExit, match=r"\['LJ050-0029'\] are dev or eval clips"):
        study.extra_training_clips(scp, [Path("/lj/LJ001-0030.wav"), Path("/lj/LJ050-0029.wav")])
    scp.write_text("\n")
    with pytest.raises(SystemExit, match="no clip listed"):
        study.extra_training_clips(scp, [])


def test_a_run_resumes_only_with_the_clips_it_trained_with(study, tmp_path):
    state_file, scp = tmp_path / "state.json", tmp_path / "wav.scp"
    study.refuse_other_clips({"marks": []}, scp, state_file)  # nothing trained yet: any clips
    study.refuse_other_clips({"marks": [15.0], "extra_clips": str(scp)}, scp, state_file)
    study.refuse_other_clips({"marks": [15.0]}, None, state_file)  # a run from before the option
    with pytest.raises(SystemExit, match=r"state.json: trained with extra_clips='', resumed with '.*wav.scp'"):
        study.refuse_other_clips({"marks": [15.0], "extra_clips": ""}, scp, state_file)
    with pytest.raises(SystemExit, match=r"trained with extra_clips='.*wav.scp', resumed with ''"):
        study.refuse_other_clips({"marks": [15.0], "extra_clips": str(scp)}, None, state_file)


def test_init_takes_a_checkpoint_file_and_refuses_a_missing_one_by_its_flag(study, tmp_path):
    import torch

    from specgrad_plugin.config import SpecGradConfig
    from specgrad_plugin.vocoder import SpecGradVocoder

    model = SpecGradVocoder(SpecGradConfig())
    torch.nn.init.normal_(model.denoiser.out.weight, std=0.05)
    model.save(tmp_path / "model.pt")
    loaded = study.init_vocoder(str(tmp_path / "model.pt"))
    assert torch.equal(loaded.denoiser.out.weight, model.denoiser.out.weight)
    with pytest.raises(SystemExit, match="--init .*missing.pt: no such checkpoint file"):
        study.init_vocoder(str(tmp_path / "missing.pt"))
    with pytest.raises(SystemExit, match="--init .*: no such checkpoint file"):
        study.init_vocoder(str(tmp_path))  # a folder, not a file
    with pytest.raises(SystemExit, match="--init ljspeech-v9: .*ljspeech-v1"):
        study.init_vocoder("ljspeech-v9")


def test_a_run_records_the_sha256_of_the_checkpoint_it_started_from(study, tmp_path):
    import hashlib
    import types

    start = tmp_path / "start.pt"
    start.write_bytes(b"weights, version 1")
    variant = next(iter(study.VARIANTS))
    args = types.SimpleNamespace(variant=variant, seed=3, init=str(start), extra_clips=None)
    record = study.run_record(args, [Path("/lj/LJ001-0001.wav")], [Path("/lj/LJ001-0030.wav")])
    assert record["init_sha256"] == hashlib.sha256(b"weights, version 1").hexdigest()
    assert record["train_clips"] == ["LJ001-0001"] and record["dev_clips"] == ["LJ001-0030"]
    assert record["seed"] == 3 and record["overrides"] == study.VARIANTS[variant]
    start.write_bytes(b"weights, version 2")  # the same path, other weights: another record
    assert study.run_record(args, [], [])["init_sha256"] == hashlib.sha256(b"weights, version 2").hexdigest()
    for init in ("ljspeech-v3", ""):  # a shipped model's name, or no start: no file to hash
        assert study.run_record(types.SimpleNamespace(**{**vars(args), "init": init}), [], [])["init_sha256"] == ""
