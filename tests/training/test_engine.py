"""The GAN loop on the micro recipe: updates, finiteness, reproducibility, resume, artefacts."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from t2i_stages.training import Trainer, prepare_run_folder, train
from t2i_stages.training.runtime import Runtime


def _trainer(recipe, registry, out):
    prepare_run_folder(recipe, registry, out, resume=False)
    return Trainer(recipe, registry, out, Runtime.create("cpu"), log=lambda *a, **k: None)


def _snapshot(module):
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


def test_one_step_changes_every_trainable_parameter(micro, registry, tmp_path):
    t = _trainer(micro(), registry, tmp_path)
    before_g = _snapshot(t.G)
    before_d = [_snapshot(d) for d in t.Ds]
    batch = t.to_device(next(t.batches()))
    logs = t.train_step([batch])
    for name, value in logs.items():
        assert torch.isfinite(value).all(), name
    unchanged = [n for n, p in t.G.named_parameters() if torch.equal(p, before_g[n])]
    assert not unchanged, f"G parameters not updated: {unchanged}"
    for i, d in enumerate(t.Ds):
        unchanged = [n for n, p in d.named_parameters() if torch.equal(p, before_d[i][n])]
        assert not unchanged, f"D{i} parameters not updated: {unchanged}"
    assert {"D0", "D1", "G_total", "KL", "G0_adv", "G1_adv"} <= set(logs)


def test_losses_stay_finite_and_are_logged(micro_run):
    out, _ = micro_run
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    for row in rows:
        for key, value in row.items():
            assert value == value and abs(value) != float("inf"), key


def test_run_folder_has_every_artefact(micro_run):
    out, summary = micro_run
    assert summary["step"] == 6
    for rel in [
        "recipe.resolved.yaml",
        "samples/captions.txt",
        "samples/step_00000003.png",
        "samples/step_00000006.png",
        "attention/step_00000006_stage1.png",
        "loss_curves.png",
        "metrics.json",
        "report.html",
        "checkpoints/step_00000006/manifest.json",
    ]:
        assert (out / rel).is_file(), rel
    assert list((out / "tb").glob("events.out.tfevents.*"))
    ckpt = out / "checkpoints" / "step_00000006"
    names = {p.name for p in ckpt.iterdir()}
    assert {
        "generator.safetensors",
        "generator_ema.safetensors",
        "discriminator_0.safetensors",
    } <= names
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"]["num_samples"] == 16
    resolved = yaml.safe_load((out / "recipe.resolved.yaml").read_text())
    assert resolved["plugins"]["generator/stagewise"]["package"] == "t2i-stages"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "Loss curves" in html


def _weights(trainer):
    states = {"G": trainer.G.state_dict()}
    states.update({f"D{i}": d.state_dict() for i, d in enumerate(trainer.Ds)})
    if trainer.ema is not None:
        states["EMA"] = trainer.ema.model.state_dict()
    return states


def _assert_same(a, b):
    for comp in a:
        for k in a[comp]:
            assert torch.equal(a[comp][k], b[comp][k]), f"{comp}.{k} differs"


def test_runs_are_bit_reproducible_on_cpu(micro, registry, tmp_path):
    quiet = dict(log=lambda *a, **k: None, evaluate=False)
    a = train(micro("train.max_steps=3"), registry, tmp_path / "a", **quiet)
    b = train(micro("train.max_steps=3"), registry, tmp_path / "b", **quiet)
    _assert_same(_weights(a["trainer"]), _weights(b["trainer"]))


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(micro, registry, tmp_path):
    quiet = dict(log=lambda *a, **k: None, evaluate=False)
    ov = ("train.ckpt_every=2",)
    full = train(micro(*ov, "train.max_steps=5"), registry, tmp_path / "full", **quiet)
    train(micro(*ov, "train.max_steps=3"), registry, tmp_path / "cut", **quiet)
    resumed = train(
        micro(*ov, "train.max_steps=5"), registry, tmp_path / "cut", resume=True, **quiet
    )
    assert resumed["trainer"].step == 5
    _assert_same(_weights(full["trainer"]), _weights(resumed["trainer"]))


def test_resume_refuses_a_different_recipe(micro, registry, tmp_path):
    from t2i_stages.errors import T2IError

    quiet = dict(log=lambda *a, **k: None, evaluate=False)
    train(micro("train.max_steps=1"), registry, tmp_path, **quiet)
    with pytest.raises(T2IError, match="differs from the one this run was started with"):
        train(micro("train.max_steps=2", "seed=5"), registry, tmp_path, resume=True, **quiet)


def test_resume_accepts_a_run_from_before_the_schema_grew_a_field(micro, registry, tmp_path):
    """A field added since the run was started, at its default, is the recipe it trained with;
    a changed value is still refused."""
    from t2i_stages.errors import T2IError

    quiet = dict(log=lambda *a, **k: None, evaluate=False)
    train(micro("train.max_steps=1"), registry, tmp_path, **quiet)
    resolved = tmp_path / "recipe.resolved.yaml"
    old = yaml.safe_load(resolved.read_text())
    del old["train"]["lr_schedule"]  # as the runs made before train.lr_schedule existed
    resolved.write_text(yaml.safe_dump(old))
    again = train(micro("train.max_steps=2"), registry, tmp_path, resume=True, **quiet)
    assert again["trainer"].step == 2
    with pytest.raises(T2IError, match="train.lr_schedule.kind: 'constant' -> 'linear'"):
        train(
            micro("train.max_steps=3", "train.lr_schedule.kind=linear"),
            registry, tmp_path, resume=True, **quiet,
        )  # fmt: skip


def test_a_fresh_run_never_overwrites_an_earlier_runs_checkpoints(micro, registry, tmp_path):
    from t2i_stages.errors import T2IError

    quiet = dict(log=lambda *a, **k: None, evaluate=False)
    train(micro("train.max_steps=1"), registry, tmp_path, **quiet)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    with pytest.raises(T2IError, match="holds the checkpoints of an earlier run"):
        train(micro("train.max_steps=1"), registry, tmp_path, **quiet)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


@pytest.mark.parametrize(
    "switch",
    ["train.channels_last=true", "train.fused_optimizer=false", "train.finite_check=deferred"],
)
def test_speed_switches_train_the_same_model(micro, registry, tmp_path, switch):
    """channels-last, foreach instead of fused Adam and the deferred finite check change how a
    step runs, not what it computes: two steps match the default path to float tolerance."""
    results = []
    for name, extra in (("base", []), ("switch", [switch])):
        t = _trainer(micro(*extra), registry, tmp_path / name)
        batches = t.batches()
        for _ in range(2):
            t.train_step([t.to_device(next(batches))])
            t.step += 1
        results.append(_weights(t))
    if switch == "train.channels_last=true":
        t_g = next(p for p in t.G.parameters() if p.dim() == 4)
        assert t_g.is_contiguous(memory_format=torch.channels_last)
    if switch == "train.fused_optimizer=false":
        assert not t.opt_g.defaults.get("fused") and t.opt_g.defaults.get("foreach")
    else:
        assert t.opt_g.defaults.get("fused")
    # Adam turns a rounding-level gradient difference on a near-zero gradient into up to one
    # learning rate (2e-4) of update per step, so compare at a few learning rates, not at eps
    base, other = results
    for comp in base:
        for k, v in base[comp].items():
            if v.is_floating_point():
                torch.testing.assert_close(other[comp][k], v, rtol=1e-3, atol=1e-3, msg=comp + k)


def test_data_loader_workers_are_shut_down_when_fit_returns(micro, registry, tmp_path):
    # The loader's iterator sits in a reference cycle, so garbage collection may free it late
    # or never; a worker still alive at interpreter exit is SIGTERMed by multiprocessing, which
    # it ignores (it leaves stop signals to the main process), and the exit then waits forever.
    import gc
    import multiprocessing

    t = _trainer(micro("train.max_steps=3", "data.num_workers=1"), registry, tmp_path)
    gc.disable()
    try:
        t.fit()
        assert multiprocessing.active_children() == []
    finally:
        gc.enable()


def test_a_diversity_loss_draws_a_second_noise_and_reaches_g(micro, registry, tmp_path):
    """mode_seeking runs G a second time on the same captions: its term is logged, and G's
    update differs from the same step without it (same seed: same weights, batch and D step)."""
    plain = _trainer(micro(), registry, tmp_path / "plain")
    losses = [x.model_dump(exclude_none=True) for x in plain.recipe.losses]
    diverse = micro(f"losses={[*losses, {'type': 'mode_seeking', 'weight': 0.5}]}")
    t = _trainer(diverse, registry, tmp_path / "diverse")
    assert all(
        torch.equal(p, q) for p, q in zip(t.G.parameters(), plain.G.parameters(), strict=True)
    )
    logs = t.train_step([t.to_device(next(t.batches()))])
    plain.train_step([plain.to_device(next(plain.batches()))])
    assert float(logs["mode_seeking"]) > 0 and torch.isfinite(logs["mode_seeking"])
    for d, d_plain in zip(t.Ds, plain.Ds, strict=True):  # the D step does not see it
        assert all(
            torch.equal(p, q) for p, q in zip(d.parameters(), d_plain.parameters(), strict=True)
        )
    moved = [
        n
        for (n, p), q in zip(t.G.named_parameters(), plain.G.parameters(), strict=True)
        if not torch.equal(p, q)
    ]
    assert moved, "the diversity term changed nothing in G's update"


def test_mode_seeking_pairs_draws_only_that_many_captions_twice(micro, registry, tmp_path):
    plain = micro()
    losses = [x.model_dump(exclude_none=True) for x in plain.losses]
    recipe = micro(f"losses={[*losses, {'type': 'mode_seeking', 'params': {'pairs': 3}}]}")
    t = _trainer(recipe, registry, tmp_path)
    rows: list[int] = []
    real_forward = t.gan.G_train

    def counting(z, eps, text):
        rows.append(z.shape[0])
        return real_forward(z, eps, text)

    t.gan.G_train = counting
    logs = t.train_step([t.to_device(next(t.batches()))])
    assert rows == [8, 3]  # the batch for the Ds and G's loss, then the 3 second draws
    assert torch.isfinite(logs["mode_seeking"])
