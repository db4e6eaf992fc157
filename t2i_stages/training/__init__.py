"""The training engine: ``train(recipe)`` pretrains the matcher if needed, trains the GAN,
evaluates it and leaves a run folder (samples, checkpoints, metrics.json, report.html)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..lifecycle import PrepareStopped
from ..recipe import Recipe
from ..registry import Registry, load_registry
from .loop import Callback
from .run_folder import prepare_run_folder
from .runtime import Runtime
from .trainer import Trainer


def train(
    recipe: Recipe,
    registry: Registry | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    device: str | None = None,
    evaluate: bool = True,
    log=print,
    resume_command: str | None = None,
    allow_changes: bool = False,
    callbacks: Sequence[Callback] = (),
    title: str | None = None,
) -> dict[str, Any]:
    """Run a validated recipe end to end; returns ``{"out", "step", "metrics", ...}``.

    A resumed run refuses a recipe that differs from the one it started with (see
    ``prepare_run_folder``) unless ``allow_changes``.

    ``resume_command`` is what to print if a signal stops the run (the CLI passes the exact
    command line); a stopped run returns ``summary["signal"]`` and skips the evaluation.
    ``callbacks`` join the loop (``t2i_stages.training.Callback``); ``title`` heads report.html.
    The summary holds ``setup_seconds`` (assembly: datasets, matcher) and ``eval_seconds``.
    """
    from .evaluate import evaluate_run
    from .report import write_run_report

    registry = registry or load_registry()
    out = Path(out_dir) if out_dir is not None else Path("runs") / recipe.name
    runtime = Runtime.create(device=device, precision=recipe.train.precision)
    runtime.set_threads(recipe.train.threads)
    try:
        if runtime.is_main:
            log(runtime.precision_choice.describe("train.precision"))
            log(runtime.thread_choice.describe())
            for warning in runtime.warnings():
                log(f"warning: {warning}")
            prepare_run_folder(recipe, registry, out, resume, runtime.choices(), allow_changes, log)
        runtime.barrier()
        start = time.perf_counter()
        try:
            trainer = Trainer(recipe, registry, out, runtime, log=log)
        except PrepareStopped as stopped:
            command = resume_command or f"t2i-stages run RECIPE --resume {out}"
            log(f"{stopped}. Resume with: {command}")
            return {"out": str(out), "step": 0, "signal": stopped.signal_name,
                    "stopped_in": stopped.what, "resume_command": command}  # fmt: skip
        trainer.resume_command = resume_command
        vocab = getattr(trainer.assembly.train_data, "vocab", None)
        if runtime.is_main and vocab is not None and hasattr(vocab, "save"):
            vocab.save(out / "vocab.json")  # what load_run / export tokenise captions with
        if resume:
            trainer.resume()
            _same_step_on_every_rank(runtime, trainer.step, out)
        setup_seconds = time.perf_counter() - start
        summary = trainer.fit(callbacks)
        summary["out"], summary["setup_seconds"] = str(out), setup_seconds
        if evaluate and runtime.is_main and summary.get("signal") is None:
            start = time.perf_counter()
            summary["metrics"] = evaluate_run(trainer, out)
            summary["eval_seconds"] = time.perf_counter() - start
            summary["report"] = str(write_run_report(out, title or f"{recipe.name}: training run"))
        runtime.barrier()
        summary["trainer"] = trainer
        return summary
    finally:
        runtime.close()


def _same_step_on_every_rank(runtime: Runtime, step: int, out: Path) -> None:
    """Ranks that resumed at different steps would wait on each other forever: on several
    machines, one whose copy of the run folder lacks the checkpoints (not shared storage)."""
    steps = runtime.gather_ints(step)
    if len(set(steps)) > 1:
        from ..errors import T2IError

        shown = ", ".join(f"rank {r}: step {s}" for r, s in enumerate(steps))
        raise T2IError(
            f"{out}: the ranks resumed at different steps ({shown}); every machine must see "
            "the same run folder (shared storage) to resume a multi-node run"
        )


__all__ = ["Callback", "Runtime", "Trainer", "prepare_run_folder", "train"]
