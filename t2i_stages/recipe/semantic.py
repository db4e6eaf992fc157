"""Phase 3 of validation: what one slot cannot know alone.

Phase 1 checks the schema and phase 2 each plugin's params; a recipe can pass both and still
not train: no adversarial loss, two discriminators for three generator stages, a loss naming a
stage the generator lacks, a matching loss without a matcher, no text features at all. These
checks need the generator's stage resolutions and each loss's role. A plugin may state them
from its params (``ComponentSpec.resolutions`` and ``.role``; the built-ins all do), which is
all ``validate`` uses, so it imports no torch; ``run``, ``ablate --plan`` and ``validate
--build`` build the generator on the meta device (no memory, no init cost, even at paper size)
and the losses, which also catches what only a build can find (a fusion block that cannot take
its conditioning level, say). They report with file:line before anything is rendered or
trained; ``assemble`` runs the same checks on what it built.
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
    n = len(resolutions)
    out += discriminator_problems(recipe, resolutions)
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


def discriminator_problems(recipe: Recipe, resolutions: list[int]) -> list[Problem]:
    """One discriminator per generator stage (or none): all a models-only recipe (``summary``)
    can be checked for."""
    n, given = len(resolutions), len(recipe.discriminators)
    if given in (0, n):
        return []
    message = f"{given} given for {n} generator stages {resolutions}; give one per stage"
    return [(("discriminators",), message)]


def check_components(recipe: Recipe, registry: Any, build: bool = True) -> list[Problem]:
    """Run the checks on what the components are. ``build`` builds the generator (on the meta
    device) and the losses, so a build error is a problem too, located at its slot, and a
    plugin's static facts (``ComponentSpec.resolutions``, ``.role``) must agree with what it
    builds. Without ``build`` the static facts are used and nothing is built, so no torch is
    imported, unless a plugin declares none: then that component is built all the same."""
    problems: list[Problem] = []
    resolutions = None if build else static_resolutions(recipe, registry)
    if resolutions is None:
        resolutions = _built_resolutions(recipe, registry, problems)
    roles: list[str | None] = []
    for i, slot in enumerate(recipe.losses):
        declared = registry.get("loss", slot.type).spec.role
        if declared is not None and not build:
            roles.append(declared)
            continue
        role = _built_role(registry, slot, ("losses", i, "type"), problems)
        if role is not None and declared is not None and role != declared:
            problems.append(
                (
                    ("losses", i, "type"),
                    f"'{slot.type}' declares role '{declared}' but builds a {role} loss",
                )
            )
        roles.append(role)
    return problems + component_problems(recipe, resolutions, roles)


def static_resolutions(recipe: Recipe, registry: Any) -> list[int] | None:
    """The generator's stage resolutions from its params alone (``ComponentSpec.resolutions``),
    or None where its plugin cannot tell without building it."""
    spec = registry.get("generator", recipe.generator.type).spec
    if spec.resolutions is None:
        return None
    found = spec.resolutions(registry.slot_params("generator", recipe.generator), registry)
    return None if found is None else [int(r) for r in found]


def _built_resolutions(recipe: Recipe, registry: Any, problems: list[Problem]) -> list[int] | None:
    import torch

    try:
        try:
            with torch.device("meta"):
                generator = registry.build("generator", recipe.generator)
        except T2IError:  # a plugin that computes at init may need real tensors
            generator = registry.build("generator", recipe.generator)
    except T2IError as exc:
        problems.append((("generator", "type"), _first_line(exc)))
        return None
    built = [int(r) for r in getattr(generator, "resolutions", []) or []]
    declared = static_resolutions(recipe, registry)
    if declared is not None and declared != built:
        problems.append(
            (
                ("generator", "type"),
                f"'{recipe.generator.type}' declares stage resolutions {declared} but builds "
                f"{built}",
            )
        )
    return built


def _built_role(registry: Any, slot: Any, loc: Loc, problems: list[Problem]) -> str | None:
    import torch

    try:
        with torch.device("meta"):
            return loss_role(registry.build("loss", slot), slot.type)
    except T2IError as exc:
        problems.append((loc, _first_line(exc)))
        return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def raise_first(problems: list[Problem]) -> None:
    """For code that assembles a recipe that skipped validation: the first problem as a
    T2IError (``path: message``)."""
    if problems:
        loc, message = problems[0]
        raise T2IError(f"{'.'.join(str(p) for p in loc)}: {message}")
