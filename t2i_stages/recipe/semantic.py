"""Phase 3 of validation: what one slot cannot know alone.

Phase 1 checks the schema and phase 2 each plugin's params; a recipe can pass both and still
not train: no adversarial loss, two discriminators for three generator stages, a loss naming a
stage the generator lacks, a matching loss without a matcher, no text features at all. These
checks need the generator's stage resolutions and each loss's role, so the generator is built
on the meta device (no memory, no init cost, even at paper size) and the losses as they are.
``validate``, ``ablate --plan`` and ``run`` report them with file:line before anything is
rendered or trained; ``assemble`` runs the same checks on what it built.
"""

from __future__ import annotations

from typing import Any

from ..contracts import loss_role
from ..errors import T2IError
from .schema import Recipe
from .sources import Loc

Problem = tuple[Loc, str]


def component_problems(
    recipe: Recipe, resolutions: list[int] | None, roles: list[str | None] | None
) -> list[Problem]:
    """The cross-component problems, given G's stage resolutions and each loss's role (None
    where unknown: not built, or did not build)."""
    out: list[Problem] = []
    if recipe.matcher is None and recipe.text_encoder is None:
        out.append((("matcher",), "a GAN needs text features: set 'matcher' or 'text_encoder'"))
    roles = roles if roles is not None else [None] * len(recipe.losses)
    if None not in roles and "adversarial" not in roles:
        out.append((("losses",), "the recipe names no adversarial loss (for example bce_mismatch)"))
    for i, role in enumerate(roles):
        if role == "matching" and recipe.matcher is None:
            name = recipe.losses[i].type
            out.append(
                (("losses", i, "type"), f"'{name}' is a matching loss and needs a 'matcher'")
            )
    if resolutions is None:
        return out
    n, given = len(resolutions), len(recipe.discriminators)
    if given not in (0, n):
        out.append(
            (
                ("discriminators",),
                f"{given} given for {n} generator stages {resolutions}; give one per stage",
            )
        )
    for i, slot in enumerate(recipe.losses):
        for j, s in enumerate(slot.stages or []):
            if not 0 <= s < n:
                out.append(
                    (
                        ("losses", i, "stages", j),
                        f"'{slot.type}' names stage {s}; the generator has stages 0..{n - 1}",
                    )
                )
    return out


def check_components(recipe: Recipe, registry: Any) -> list[Problem]:
    """Build what the checks need (G on the meta device, the losses) and run them; a build
    error is itself a problem, located at its slot."""
    import torch

    problems: list[Problem] = []
    resolutions: list[int] | None = None
    try:
        try:
            with torch.device("meta"):
                generator = registry.build("generator", recipe.generator)
        except T2IError:  # a plugin that computes at init may need real tensors
            generator = registry.build("generator", recipe.generator)
        resolutions = [int(r) for r in getattr(generator, "resolutions", []) or []]
    except T2IError as exc:
        problems.append((("generator", "type"), _first_line(exc)))
    roles: list[str | None] = []
    for i, slot in enumerate(recipe.losses):
        try:
            with torch.device("meta"):
                roles.append(loss_role(registry.build("loss", slot), slot.type))
        except T2IError as exc:
            roles.append(None)
            problems.append((("losses", i, "type"), _first_line(exc)))
    return problems + component_problems(recipe, resolutions, roles)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def raise_first(problems: list[Problem]) -> None:
    """For code that assembles a recipe that skipped validation: the first problem as a
    T2IError (``path: message``)."""
    if problems:
        loc, message = problems[0]
        raise T2IError(f"{'.'.join(str(p) for p in loc)}: {message}")
