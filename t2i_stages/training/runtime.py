"""Where a run executes: device, distributed process group, precision and seeding.

World size 1 means no process group at all, and the same code path as under torchrun. Under
torchrun (``WORLD_SIZE`` > 1) the group uses gloo on the CPU and nccl on CUDA; rank 0 alone
writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import T2IError
from ..hardware import PrecisionChoice, ThreadChoice, autocast, choose_threads, resolve_precision


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    precision: str = "fp32"  # what autocast runs: fp32, bf16 or fp16 (never auto)
    precision_choice: PrecisionChoice | None = None  # what the recipe asked for, and why
    thread_choice: ThreadChoice | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def create(
        cls, device: str | None = None, precision: str = "fp32", what: str = "train.precision"
    ) -> Runtime:
        """Read torchrun's environment, pick the device, resolve ``precision`` (``auto``: bf16
        only where the device runs it natively, see ``t2i_stages.hardware``) and start the
        process group if needed."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device in (None, "auto"):
            dev = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        else:
            dev = torch.device(device)
            if dev.type == "cuda" and not torch.cuda.is_available():
                raise T2IError(f"--device {device}: CUDA is not available on this machine")
            if dev.type == "cuda" and dev.index is None:
                dev = torch.device(f"cuda:{local}")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if precision == "fp16" and dev.type != "cuda":
            raise T2IError(f"{what}: fp16 autocast needs CUDA; use auto, bf16 or fp32 on the CPU")
        choice = resolve_precision(precision, dev, what=what)
        if world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        return cls(dev, rank, world, local, choice.chosen, choice)

    def set_threads(self, requested: int | None) -> ThreadChoice:
        """Set torch's CPU threads: the recipe's count, or (null) one per core left free by
        other work and by this machine's other ranks; the choice is kept for the run's record."""
        share = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        self.thread_choice = choose_threads(requested, share=share)
        torch.set_num_threads(self.thread_choice.chosen)
        return self.thread_choice

    def choices(self) -> dict:
        """The run's ``auto`` decisions, as recorded in recipe.resolved.yaml and metrics.json."""
        out: dict = {"device": str(self.device)}
        if self.precision_choice is not None:
            out["precision"] = self.precision_choice.to_dict()
        if self.thread_choice is not None:
            out["threads"] = self.thread_choice.to_dict()
        return out

    def warnings(self) -> list[str]:
        return [c.warning for c in (self.precision_choice, self.thread_choice) if c and c.warning]

    def autocast(self):
        """Autocast context for the forward passes (bf16/fp16), or a no-op for fp32."""
        return autocast(self.precision, self.device)

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """Wrap a trainable module in its own DDP when distributed (G and each D separately)."""
        if not self.distributed or not any(p.requires_grad for p in module.parameters()):
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        try:  # newer torch: sync buffers once at init, never in forward (SN/BN buffers stay local)
            return DDP(module, device_ids=ids, forward_sync_buffers=False)
        except TypeError:
            return DDP(module, device_ids=ids, broadcast_buffers=False)

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any (all stop or skip together)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_gather_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate a (N, ...) tensor from every rank along dim 0 (equal N per rank)."""
        if not self.distributed:
            return t
        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)

    def gather_ints(self, value: int) -> list[int]:
        """``value`` from every rank, in rank order (``[value]`` alone without a group)."""
        if not self.distributed:
            return [int(value)]
        t = torch.tensor([int(value)], dtype=torch.long, device=self.device)
        return [int(v) for v in self.all_gather_tensor(t).tolist()]

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if not self.distributed:
            return value
        value = value.clone()
        dist.all_reduce(value)
        return value / self.world_size

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return getattr(module, "module", module)
