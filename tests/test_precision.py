"""precision="auto": bf16 autocast only where the device computes bf16 natively, fp32 elsewhere.

The hardware is monkeypatched (CPU flags, oneDNN's bf16 check, ONEDNN_MAX_CPU_ISA), so every branch runs
on any machine; one test trains a tiny run and checks what its config records.

    .venv/bin/python -m pytest tests/test_precision.py -q
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from bntt_core import cli
from bntt_core.nn import step
from bntt_core.nn.kernels import cpu as _cpu_kernels
from bntt_core.runs.training import TrainConfig, evaluate_run, train

AVX512_BF16 = frozenset({"avx2", "fma", "avx512f", "avx512_bf16"})
AVX2_ONLY = frozenset({"avx2", "fma"})
AVX512_NO_BF16 = frozenset({"avx2", "fma", "avx512f", "avx512bw"})  # Skylake-SP: oneDNN emulates bf16 there


@pytest.fixture
def cpu(monkeypatch):
    """Set the CPU the precision choice sees: cpu(flags, onednn_bf16=True, isa_cap=None)."""

    def set_cpu(flags, onednn_bf16=True, isa_cap=None):
        monkeypatch.setattr(step, "cpu_flags", lambda: flags)
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn_bf16, raising=False)
        monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
        if isa_cap is None:
            monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        else:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa_cap)
        monkeypatch.setattr(step, "_native_bf16_cache", {})
        monkeypatch.setattr(step, "_warned_slow", set())

    return set_cpu


@pytest.mark.parametrize("flags, onednn, cap, expected", [
    (AVX512_BF16, True, None, "bf16"),
    (frozenset({"avx2", "amx_bf16", "amx_tile"}), True, None, "bf16"),
    (AVX2_ONLY, False, None, "fp32"),  # most laptops
    (AVX512_NO_BF16, True, None, "fp32"),  # oneDNN says "bf16 supported" but emulates it
    (AVX512_BF16, False, "AVX2", "fp32"),  # the benchmark's AVX2 hold
    (AVX512_BF16, True, "AVX512_CORE", "fp32"),  # held below the bf16 instructions
    (AVX512_BF16, True, "AVX512_CORE_BF16", "bf16"),
])
def test_auto_is_bf16_only_where_the_cpu_computes_it_natively(cpu, flags, onednn, cap, expected):
    cpu(flags, onednn, cap)
    assert step.DEFAULT_PRECISION == "auto"
    assert step.resolve_precision(None, "cpu") == expected
    assert step.resolve_precision("auto", "cpu") == expected
    assert step.resolve_precision("fp32", "cpu") == "fp32"


def test_cuda_auto_follows_the_gpus_bf16_support(monkeypatch):
    monkeypatch.setattr(step, "_native_bf16_cache", {})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert step.resolve_precision(None, "cuda") == "bf16"
    monkeypatch.setattr(step, "_native_bf16_cache", {})
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert step.resolve_precision(None, "cuda") == "fp32"


def test_forced_bf16_without_native_support_warns_once_and_is_honoured(cpu):
    cpu(AVX2_ONLY, onednn_bf16=False)
    with pytest.warns(step.SlowPrecisionWarning, match="emulated"):
        assert step.resolve_precision("bf16", "cpu") == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise
        assert step.resolve_precision("bf16", "cpu") == "bf16"


def test_forced_bf16_with_native_support_is_silent(cpu):
    cpu(AVX512_BF16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert step.resolve_precision("bf16", "cpu") == "bf16"


def test_unknown_precision_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown precision 'fp16'.*auto"):
        step.resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="unknown precision"):
        TrainConfig(precision="half").validate()


def test_autocast_follows_the_resolved_precision(cpu):
    cpu(AVX2_ONLY, onednn_bf16=False)
    with step.autocast(torch.device("cpu"), None):
        assert not torch.is_autocast_enabled("cpu")
    cpu(AVX512_BF16)
    with step.autocast(torch.device("cpu"), None):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


@pytest.mark.parametrize("stored, flags, expected", [
    ({"precision": "bf16"}, AVX512_BF16, "bf16"),  # reproduce the recorded number where bf16 is native
    ({"precision": "bf16"}, AVX2_ONLY, "fp32"),  # never the emulated path by default
    ({"precision": "auto", "precision_used": "bf16"}, AVX512_BF16, "bf16"),
    ({"precision": "auto", "precision_used": "fp32"}, AVX512_BF16, "fp32"),  # the run's own, not the machine's
    ({"precision": "fp32"}, AVX2_ONLY, "fp32"),
    ({}, AVX512_BF16, "bf16"),
    (None, AVX2_ONLY, "fp32"),
])
def test_a_stored_run_is_evaluated_in_its_own_precision_unless_emulated(cpu, stored, flags, expected):
    cpu(flags, onednn_bf16=flags is AVX512_BF16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # choosing for a stored run never warns
        assert step.run_precision(stored, "cpu") == expected


def test_training_records_the_precision_it_used_and_evaluation_reuses_it(cpu, tmp_path):
    cpu(AVX2_ONLY, onednn_bf16=False)
    config = TrainConfig(arch="mlp", dataset="mnist10k", width=0.05, num_steps=2, epochs=1, batch_size=64,
                         lr=0.1, max_train_images=128, max_test_images=64, eval_batch_size=64, device="cpu",
                         threads=1)
    assert config.precision == "auto"
    result = train(config, tmp_path / "run", progress="none")
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert stored["precision"] == "auto" and stored["precision_used"] == "fp32"
    evaluated = evaluate_run(tmp_path / "run", threads=1)
    assert evaluated["precision"] == "fp32"
    assert evaluated["test_accuracy"] == result.test_accuracy


def test_the_cli_lists_the_engines_precisions_and_refuses_others(capsys):
    assert cli.PRECISIONS == step.PRECISIONS  # kept in cli.py so that --help does not import torch
    for command in (["evaluate", "RUN"], ["analyze", "RUN"], ["convert", "RUN", "--out", "X"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.build_parser().parse_args([*command, "--precision", "fp16"])
        assert exit_info.value.code == cli.EXIT_USAGE
        assert "invalid choice: 'fp16'" in capsys.readouterr().err


def test_kernel_target_flags_are_overridable(monkeypatch):
    monkeypatch.delenv("BNTT_KERNEL_CFLAGS", raising=False)
    assert _cpu_kernels.target_flags() == ["-march=native"]
    monkeypatch.setenv("BNTT_KERNEL_CFLAGS", "-march=x86-64-v3 -mtune=generic")
    assert _cpu_kernels.target_flags() == ["-march=x86-64-v3", "-mtune=generic"]


@pytest.mark.slow  # ~15-40 s: builds the loops for x86-64-v3 and runs the speed-path tests in a subprocess
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or shutil.which(os.environ.get("CC", "cc")) is None,
                    reason="needs an x86-64 C compiler")
def test_the_compiled_loops_built_for_avx2_pass_the_exactness_tests(tmp_path):
    """Built for x86-64-v3 (AVX2 + FMA, no AVX-512: the 16-float vector types become pairs of 256-bit ones),
    the loops still give the eager scan's values bit for bit (the speed-path tests, in a fresh process)."""
    env = {**os.environ, "BNTT_KERNEL_CFLAGS": "-march=x86-64-v3", "BNTT_KERNEL_CACHE": str(tmp_path),
           "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    env.pop("BNTT_NO_KERNELS", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           str(Path(__file__).with_name("test_speed_paths.py"))],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert list(tmp_path.glob("bntt_kernels_*.so")), "the AVX2 build did not happen"
