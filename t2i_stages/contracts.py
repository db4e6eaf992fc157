"""What components ask of each other, checked when they are built.

``check_fit``: a fusion block's input kind (``requires``) must be what its conditioning level
gives (``provides``); a stage calls it after building the two.

What the training step asks of a loss, and of the discriminator a loss judges with:

A loss declares its ``role``; the step calls each role differently:

- ``adversarial``: ``d_loss(critic, real, fake, cond)`` and ``g_loss(critic, fake, cond)``;
- ``matching``: ``loss(image_features, text, class_ids)`` on the matcher's features of a stage;
- ``kl``: ``loss(mu, logvar)`` on the conditioning augmentation's statistics;
- ``diversity``: ``loss(images_a, images_b, z_a, z_b)`` on two generations of the same
  captions from two noise draws (the step runs the generator a second time for it, on the
  batch's first ``loss.pairs`` captions where the loss sets that attribute, else all).

``loss_role`` checks this when the loss is built, so a loss that forgets its role, or names a
role without its methods, is an error naming the plugin rather than a silent misuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import PluginError, T2IError

if TYPE_CHECKING:  # validation checks roles without importing torch
    import torch

    from .types import ImageFeatures, TextFeatures


class Critic(Protocol):
    """A discriminator as an adversarial loss sees it: a trunk and two optional heads.

    ``uncond`` and ``cond`` return raw logits (B,), or None when the D has no such head.
    """

    def features(self, images: torch.Tensor) -> torch.Tensor: ...

    def uncond(self, features: torch.Tensor) -> torch.Tensor | None: ...

    def cond(
        self, features: torch.Tensor, condition: torch.Tensor | None
    ) -> torch.Tensor | None: ...


@runtime_checkable
class AdversarialLoss(Protocol):
    role: str  # "adversarial"

    def d_loss(
        self, critic: Critic, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor | None
    ) -> torch.Tensor: ...

    def g_loss(
        self, critic: Critic, fake: torch.Tensor, cond: torch.Tensor | None
    ) -> torch.Tensor: ...


@runtime_checkable
class MatchingLoss(Protocol):
    role: str  # "matching"

    def __call__(
        self, image_features: ImageFeatures, text: TextFeatures, class_ids: torch.Tensor | None
    ) -> torch.Tensor: ...


@runtime_checkable
class KLLoss(Protocol):
    role: str  # "kl"

    def __call__(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class DiversityLoss(Protocol):
    role: str  # "diversity"

    def __call__(
        self,
        images_a: list[torch.Tensor],
        images_b: list[torch.Tensor],
        z_a: torch.Tensor,
        z_b: torch.Tensor,
    ) -> torch.Tensor: ...


LOSS_ROLES: dict[str, type] = {
    "adversarial": AdversarialLoss,
    "matching": MatchingLoss,
    "kl": KLLoss,
    "diversity": DiversityLoss,
}


def loss_role(loss: Any, name: str) -> str:
    """The role of a built loss, checked against its protocol; a T2IError naming ``name``."""
    role = getattr(loss, "role", None)
    if role not in LOSS_ROLES:
        raise T2IError(
            f"loss '{name}': cannot tell its role ({type(loss).__name__}.role is {role!r}); "
            "set role to 'adversarial' (d_loss, g_loss), 'matching' "
            "(__call__(image_features, text, class_ids)), 'kl' (__call__(mu, logvar)) or "
            "'diversity' (__call__(images_a, images_b, z_a, z_b))"
        )
    if not isinstance(loss, LOSS_ROLES[role]):
        needs = "d_loss and g_loss" if role == "adversarial" else "__call__"
        raise T2IError(f"loss '{name}': role {role!r} needs {needs} ({type(loss).__name__})")
    return role


_GIVES = {"sequence": "a word sequence", "vector": "a vector", "none": "no text"}


def check_fit(
    cond: Any, fusion: Any, cond_name: str, fusion_name: str, where: str = "stage"
) -> None:
    """Refuse a fusion block whose input kind its conditioning level does not give.

    ``cond.provides`` and ``fusion.requires`` are ``"vector"``, ``"sequence"`` or ``"none"``;
    a component without the attribute is not checked. Raises a ``PluginError`` naming
    ``where`` (e.g. ``"stage 'refine'"``) and both components, which recipe validation and
    ``ablate --plan`` report with the slot's file and line.
    """
    need = getattr(fusion, "requires", None)
    have = getattr(cond, "provides", None)
    if need is not None and have is not None and need != have:
        raise PluginError(
            f"{where}: fusion '{fusion_name}' needs {_GIVES.get(need, need)} but conditioning "
            f"'{cond_name}' gives {_GIVES.get(have, have)}; pick a matching conditioning level"
        )
