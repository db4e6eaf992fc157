"""``python -m t2i_stages.ablation.worker TASK.json RESULT.json``: one run of a study in its own
process (what ``--launcher processes`` starts). The outcome is written to RESULT.json last, via
a temporary file, so the study reads a whole result or none (a crashed run)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .execute import run_task


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m t2i_stages.ablation.worker TASK.json RESULT.json", file=sys.stderr)
        return 2
    task_file, result = Path(args[0]), Path(args[1])
    task = json.loads(task_file.read_text(encoding="utf-8"))
    claimed = {"CPU": task.get("threads")}
    if os.environ.get("CUDA_VISIBLE_DEVICES"):  # the GPU(s) the study gave this run
        claimed["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    outcome = run_task(task, claimed)
    tmp = result.with_name(result.name + ".tmp")
    tmp.write_text(json.dumps(outcome, indent=2), encoding="utf-8")
    tmp.replace(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
