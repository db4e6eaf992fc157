"""What the training step asks of a loss, and of the discriminator a loss judges with.

A loss declares its ``role``; the step calls each role differently:

- ``adversarial``: ``d_loss(critic, real, fake, cond)`` and ``g_loss(critic, fake, cond)``;
- ``matching``: ``loss(image_features, text, class_ids)`` on the matcher's features of a stage;
- ``kl``: ``loss(mu, logvar)`` on the conditioning augmentation's statistics.

``loss_role`` checks this when the loss is built, so a loss that forgets its role, or names a
role without its methods, is an error naming the plugin rather than a silent misuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import T2IError

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


LOSS_ROLES: dict[str, type] = {
    "adversarial": AdversarialLoss,
    "matching": MatchingLoss,
    "kl": KLLoss,
}


def loss_role(loss: Any, name: str) -> str:
    """The role of a built loss, checked against its protocol; a T2IError naming ``name``."""
    role = getattr(loss, "role", None)
    if role not in LOSS_ROLES:
        raise T2IError(
            f"loss '{name}': cannot tell its role ({type(loss).__name__}.role is {role!r}); "
            "set role to 'adversarial' (d_loss, g_loss), 'matching' "
            "(__call__(image_features, text, class_ids)) or 'kl' (__call__(mu, logvar))"
        )
    if not isinstance(loss, LOSS_ROLES[role]):
        needs = "d_loss and g_loss" if role == "adversarial" else "__call__"
        raise T2IError(f"loss '{name}': role {role!r} needs {needs} ({type(loss).__name__})")
    return role
