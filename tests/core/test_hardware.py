"""The ``auto`` rules (precision, threads) and ``t2i-stages env``, on machines stood in for."""

from __future__ import annotations

import json
import sys

import pytest

from t2i_stages import hardware
from t2i_stages.cli.main import main
from t2i_stages.hardware import CpuInfo, choose_threads, resolve_precision

SAPPHIRE_RAPIDS = CpuInfo(
    model="Intel Xeon",
    flags=frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}),
    aten_capability="AVX512",
    onednn_bf16=True,
)
ZEN3 = CpuInfo(model="AMD EPYC 7B13", flags=frozenset({"avx2"}), aten_capability="AVX2")
SKYLAKE = CpuInfo(  # AVX-512 without bf16: oneDNN still says "bf16 supported" (emulated)
    model="Intel Xeon Gold 6148",
    flags=frozenset({"avx2", "avx512f"}),
    aten_capability="AVX512",
    onednn_bf16=True,
)


def test_auto_picks_bf16_only_on_a_cpu_with_native_bf16():
    assert resolve_precision("auto", "cpu", SAPPHIRE_RAPIDS).chosen == "bf16"
    zen = resolve_precision("auto", "cpu", ZEN3)
    assert zen.chosen == "fp32"
    assert "no AVX512-BF16 or AMX" in zen.reason and "AVX2" in zen.reason
    assert resolve_precision("auto", "cpu", SKYLAKE).chosen == "fp32"


def test_auto_follows_the_isa_caps_that_emulate_an_avx2_machine():
    capped = CpuInfo(**{**SAPPHIRE_RAPIDS.__dict__, "onednn_max_isa": "AVX2"})
    choice = resolve_precision("auto", "cpu", capped)
    assert choice.chosen == "fp32" and "ONEDNN_MAX_CPU_ISA=AVX2" in choice.reason
    aten = CpuInfo(**{**SAPPHIRE_RAPIDS.__dict__, "aten_capability": "AVX2"})
    assert resolve_precision("auto", "cpu", aten).chosen == "fp32"
    amx = CpuInfo(**{**SAPPHIRE_RAPIDS.__dict__, "onednn_max_isa": "avx512_core_amx"})
    assert resolve_precision("auto", "cpu", amx).chosen == "bf16"


def test_auto_on_cuda_follows_the_gpus_bf16_support():
    assert resolve_precision("auto", "cuda", cuda_bf16=True).chosen == "bf16"
    assert resolve_precision("auto", "cuda", cuda_bf16=False).chosen == "fp32"
    assert resolve_precision("fp16", "cuda", cuda_bf16=True).chosen == "fp16"


def test_explicit_bf16_on_an_avx2_cpu_runs_with_a_warning():
    choice = resolve_precision("bf16", "cpu", ZEN3, what="train.precision")
    assert choice.chosen == "bf16"
    assert "14x slower" in choice.warning and "precision: auto" in choice.warning
    assert "\n" not in choice.warning
    assert resolve_precision("bf16", "cpu", SAPPHIRE_RAPIDS).warning is None
    assert resolve_precision("fp32", "cpu", ZEN3).warning is None


def test_runtime_records_the_choice(monkeypatch):
    from t2i_stages.training.runtime import Runtime

    monkeypatch.setattr(hardware, "cpu_info", lambda: ZEN3)
    rt = Runtime.create("cpu", "auto")
    assert rt.precision == "fp32"
    assert rt.choices()["precision"]["requested"] == "auto"
    monkeypatch.setattr(hardware, "cpu_info", lambda: SAPPHIRE_RAPIDS)
    assert Runtime.create("cpu", "auto").precision == "bf16"


def test_busy_cores_make_auto_pick_fewer_threads(monkeypatch):
    monkeypatch.delenv("T2I_STAGES_THREADS", raising=False)
    idle = choose_threads(None, usable_cores=2, busy=0.1)
    assert idle.chosen == 2 and idle.warning is None
    busy = choose_threads(None, usable_cores=2, busy=1.0)
    assert busy.chosen == 1 and "busy" in busy.warning
    assert choose_threads(None, usable_cores=2, busy=2.0).chosen == 1  # never zero
    kept = choose_threads(2, usable_cores=2, busy=1.2)
    assert kept.chosen == 2 and "threads: null" in kept.warning
    assert choose_threads(None, usable_cores=4, busy=0.0, share=2).chosen == 2  # two ranks


def test_t2i_stages_threads_pins_the_count(monkeypatch):
    monkeypatch.setenv("T2I_STAGES_THREADS", "3")
    assert choose_threads(None, usable_cores=2, busy=2.0).chosen == 3
    monkeypatch.setenv("T2I_STAGES_THREADS", "many")
    with pytest.raises(ValueError, match="T2I_STAGES_THREADS"):
        choose_threads(None, usable_cores=2, busy=0.0)


def test_env_json_without_cuda_or_onnxruntime(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert main(["env", "--json"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["cuda"]["available"] is False and env["cuda"]["gpus"] == []
    assert env["onnxruntime"]["available"] is False
    assert set(env["cpu"]["flags"]) == set(hardware.REPORTED_FLAGS)
    assert env["precision_auto"]["cpu"]["chosen"] in ("bf16", "fp32")
    assert "cuda" not in env["precision_auto"]
    assert env["home"]["path"] and env["threads_auto"]["chosen"] >= 1
    assert env["packages"]["torch"] == torch.__version__.split("+")[0]


def test_env_text_names_the_isa_and_the_auto_choice(monkeypatch, capsys):
    monkeypatch.setattr(hardware, "cpu_info", lambda: ZEN3)
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "AMD EPYC 7B13" in out and "AVX512_BF16 no" in out
    assert "precision auto on cpu: fp32" in out
    assert "T2I_STAGES_HOME" in out
