"""The Python API over a finished run: load it, tokenise captions, generate images."""

from __future__ import annotations

import pytest
import torch

from t2i_stages.api import load_run
from t2i_stages.errors import T2IError


def test_load_run_generates_images_for_captions(micro_run, registry):
    out, summary = micro_run
    run = load_run(out, registry=registry)
    assert run.step == summary["step"]
    result = run.generate(["a red circle", "a blue star on the left"], seed=3)
    assert [tuple(x.shape) for x in result.images] == [(2, 3, 16, 16), (2, 3, 32, 32)]
    assert result.images[-1].abs().max() <= 1.0
    again = run.generate(["a red circle", "a blue star on the left"], seed=3)
    assert torch.equal(result.images[-1], again.images[-1])


def test_loaded_generator_is_the_trained_ema(micro_run, registry):
    out, summary = micro_run
    run = load_run(out, registry=registry)
    trained = summary["trainer"].ema.model.state_dict()
    for k, v in run.generator.state_dict().items():
        assert torch.equal(v, trained[k]), k


def test_not_a_run_folder(tmp_path, registry):
    with pytest.raises(T2IError, match="not a run folder"):
        load_run(tmp_path, registry=registry)
