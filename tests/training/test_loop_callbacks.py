"""The loop's public seam: callbacks see every step, log, sample, checkpoint, eval and the end,
and one of them can stop the run (which still ends with a checkpoint)."""

from __future__ import annotations

from t2i_stages.checkpoint import list_checkpoints
from t2i_stages.training import Callback, Trainer, prepare_run_folder
from t2i_stages.training.runtime import Runtime


class Recorder(Callback):
    def __init__(self, stop_at: int | None = None):
        self.events: list[tuple[str, int]] = []
        self.stop_at = stop_at

    def on_step(self, trainer, logs):
        self.events.append(("step", trainer.step))
        assert "G_total" in logs or "nonfinite_skipped" in logs
        return self.stop_at is not None and trainer.step >= self.stop_at

    def on_log(self, trainer, values):
        self.events.append(("log", trainer.step))
        assert "images_per_s" in values

    def on_sample(self, trainer):
        self.events.append(("sample", trainer.step))

    def on_checkpoint(self, trainer, path):
        self.events.append(("checkpoint", trainer.step))
        assert path is not None and path.name == f"step_{trainer.step:08d}"

    def on_eval(self, trainer):
        self.events.append(("eval", trainer.step))

    def on_end(self, trainer, summary):
        self.events.append(("end", summary["step"]))


def _trainer(micro, registry, out, *overrides):
    recipe = micro(*overrides)
    prepare_run_folder(recipe, registry, out, resume=False)
    return Trainer(recipe, registry, out, Runtime.create("cpu"), log=lambda *a, **k: None)


def test_callbacks_see_each_event_in_order(micro, registry, tmp_path):
    t = _trainer(
        micro, registry, tmp_path,
        "train.max_steps=4", "train.log_every=2", "train.sample_every=3", "train.ckpt_every=2",
    )  # fmt: skip
    rec = Recorder()
    summary = t.fit([rec], eval_every=4)
    assert summary["stopped_by"] == "max_steps at step 4 of 4"
    assert rec.events == [
        ("step", 1),
        ("log", 2), ("checkpoint", 2), ("step", 2),
        ("sample", 3), ("step", 3),
        ("log", 4), ("eval", 4), ("checkpoint", 4), ("step", 4),
        ("end", 4),
    ]  # fmt: skip


def test_a_callback_stops_the_run_with_a_checkpoint(micro, registry, tmp_path):
    t = _trainer(micro, registry, tmp_path, "train.max_steps=50", "train.ckpt_every=1000")
    summary = t.fit([Recorder(stop_at=2)])
    assert summary["step"] == 2 and summary["stopped_by"] == "callback at step 2 of 50"
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_00000002"]
    assert (tmp_path / "training.json").is_file()  # the run folder's writer ran its on_end
