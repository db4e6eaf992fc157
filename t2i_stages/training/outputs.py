"""What rank 0 writes into the run folder while training: TensorBoard scalars and images,
sample grids for fixed test captions, attention overlays, loss curves and the HTML report.

``RunOutputs`` is a training-loop callback; ``Trainer.fit`` puts it first."""

from __future__ import annotations

import json
from pathlib import Path

from .loop import Callback
from .report import write_run_report
from .visuals import attention_figure, caption_grid, loss_curves


class RunOutputs(Callback):
    def __init__(self, trainer):
        self.t = trainer
        self.out: Path = trainer.out
        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        (self.out / "attention").mkdir(parents=True, exist_ok=True)
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out / "tb"), purge_step=trainer.step or None)
        except Exception as exc:  # tensorboard missing or broken: the run goes on without it
            trainer.log(f"warning: TensorBoard disabled: {exc}")
        captions = self.t.fixed["batch"]["caption"]
        (self.out / "samples" / "captions.txt").write_text(
            "\n".join(f"{i}: {c}" for i, c in enumerate(captions)) + "\n"
        )

    def on_log(self, trainer, values: dict[str, float]) -> None:
        with open(self.out / "history.jsonl", "a") as f:
            f.write(json.dumps({"step": self.t.step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"train/{k}", v, self.t.step)

    def on_sample(self, trainer) -> None:
        t = self.t
        fixed = t.fixed
        out = t.generate(fixed["batch"], fixed["z"], fixed["eps"])
        captions = list(fixed["batch"]["caption"])
        grid = caption_grid(out.images[-1], captions)
        path = self.out / "samples" / f"step_{t.step:08d}.png"
        grid.save(path)
        if self.tb is not None:
            import numpy as np

            self.tb.add_image("samples", np.asarray(grid), t.step, dataformats="HWC")
        vocab = getattr(t.assembly.test_data, "vocab", None)
        tokens, mask = fixed["batch"]["tokens"], fixed["batch"]["mask"]
        for stage, attn in enumerate(out.attention):
            if attn is None:
                continue
            n = min(4, attn.shape[0])
            words = []
            for i in range(n):
                ids = tokens[i][mask[i]].tolist()
                if vocab is not None and hasattr(vocab, "decode_ids"):
                    words.append(vocab.decode_ids(ids))
                elif vocab is not None and hasattr(vocab, "itos"):
                    words.append([vocab.itos[j] for j in ids])
                else:
                    words.append(captions[i].split()[: len(ids)])
            real_len = int(mask[:n].sum(1).max())
            img = out.images[min(stage + 1, len(out.images) - 1)][:n]
            fig = attention_figure(img, attn[:n, :real_len].float(), words)
            fig.save(self.out / "attention" / f"step_{t.step:08d}_stage{stage + 1}.png")

    def on_end(self, trainer, summary: dict) -> None:
        self.on_sample(trainer)
        if self.t.history:
            loss_curves(self.t.history, self.out / "loss_curves.png")
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
        record = {"runtime": self.t.runtime.choices()}
        if self.t.stop is not None:
            record["stopped_by"] = self.t.stop.text()
            record["training"] = self.t.stop.to_dict()
        (self.out / "training.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
        write_run_report(self.out, f"{self.t.recipe.name}: training run")
