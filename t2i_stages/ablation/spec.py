"""The ablation file: a base recipe, overrides shared by every variant, seeds, metrics, variants.

An ablation is a small YAML file read with ``yaml.safe_load`` and checked by the pydantic models
below (unknown keys are errors). Each variant is a list of ``--set``-style overrides (and
optionally paths to remove) applied on top of the base recipe, so a variant says exactly what it
changes and nothing else. A variant may name a recipe of its own (``base``): a comparison of
families is a study whose variants are the families' recipes. ``claims`` name the pairwise
comparisons the study is for; each gets a permutation test in the report (``stats.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import RecipeError, T2IError
from ..recipe.builtin import builtin_recipe, is_builtin
from ..recipe.sources import MAX_RECIPE_BYTES, duplicate_keys, parse_override
from ..recipe.suggest import did_you_mean

_VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class AblationError(T2IError):
    """An ablation file, one of its variants, or one of its run folders is unusable."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _check_overrides(items: list[str]) -> list[str]:
    for text in items:
        try:
            parse_override(text)
        except T2IError as exc:
            raise ValueError(str(exc)) from None
    return items


def _check_paths(items: list[str]) -> list[str]:
    for text in items:
        parts = text.split(".")
        if not text or any(not p for p in parts) or "=" in text:
            raise ValueError(f"'{text}' is not a dotted path (such as losses.4)")
    return items


class MetricSpec(_Strict):
    """One column of the comparison table."""

    name: str = Field(
        description="A value name from metrics.json (e.g. 'attr_acc[all_mentioned]', "
        "'FD[matcher]'), optionally prefixed with its metric key and a slash "
        "('attribute_accuracy/attr_acc[shape]') when two metrics report the same name."
    )
    label: str | None = Field(None, description="Column title; null uses the name.")
    better: Literal["higher", "lower", "neutral"] | None = Field(
        None,
        description="Which direction is better (an arrow in the table); null takes what the "
        "metric declares in metrics.json (its `better`), neutral (no arrow) when it declares "
        "nothing.",
    )

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def direction(self) -> str:
        """``better`` once resolved against the runs (``report.with_directions``)."""
        return self.better or "neutral"


class Variant(_Strict):
    """One arm of the ablation: overrides on top of the base recipe (and the shared ones)."""

    name: str = Field(description="Folder-safe name (letters, digits, '_', '-', '.').")
    description: str = Field("", description="What the variant tests, shown in the table.")
    set: list[str] = Field(
        default_factory=list,
        description="Overrides KEY.PATH=VALUE (values parsed as YAML), applied in order after the "
        "shared ones; the same syntax as `--set`.",
    )
    unset: list[str] = Field(
        default_factory=list,
        description="Dotted paths to remove after the overrides (a mapping key, or a list item "
        "such as losses.4); list items are removed from the highest index down, so every index "
        "refers to the list as it was before any removal.",
    )
    base: str | None = Field(
        None,
        description="This variant's own recipe instead of the study's base (relative to the "
        "ablation file, or builtin:NAME): a comparison of families. The shared overrides, the "
        "seeds and the same_budget check still apply.",
    )

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        if not _VARIANT_NAME.match(value):
            raise ValueError(
                f"'{value}' is not a variant name (letters, digits, '_', '-', '.'; it names a "
                "folder)"
            )
        return value

    @field_validator("set")
    @classmethod
    def _overrides_ok(cls, value: list[str]) -> list[str]:
        return _check_overrides(value)

    @field_validator("unset")
    @classmethod
    def _paths_ok(cls, value: list[str]) -> list[str]:
        return _check_paths(value)

    @property
    def changes(self) -> list[str]:
        """The variant's own changes as one-line strings (for tables and logs)."""
        own = [f"recipe {self.base}"] if self.base is not None else []
        return [*own, *self.set, *(f"unset {p}" for p in self.unset)]


class Claim(_Strict):
    """A pairwise claim the study tests: variant ``a`` against variant ``b`` on some metrics.

    The report gives, per metric, both means, the difference a - b with its 95% bootstrap
    interval and a two-sided permutation test over the seeds (``stats.py``). The claim names no
    direction on purpose: the table says which way the numbers fall.
    """

    a: str = Field(description="A variant.")
    b: str = Field(description="The variant it is compared with.")
    metrics: list[str] = Field(
        default_factory=list,
        description="Metric names (as in `metrics`); empty = every metric of the table.",
    )
    label: str | None = Field(None, description="What the claim says (e.g. the paper's words).")

    @property
    def title(self) -> str:
        return self.label or f"{self.a} vs {self.b}"


class RunResources(_Strict):
    """What each run of the study claims under the processes and Ray launchers."""

    cpus: int | None = Field(
        None,
        ge=1,
        description="CPU cores per run: its torch threads and, on Ray, its num_cpus claim. "
        "null: the processes launcher shares this machine's cores among its --jobs, Ray "
        "claims 1.",
    )
    gpus: float = Field(
        0,
        ge=0,
        description="GPUs per run: a share of one GPU packs several runs onto it (0.25: four "
        "runs per GPU), or a whole number of GPUs; 0 trains on the CPU.",
    )

    @field_validator("gpus")
    @classmethod
    def _share_or_whole(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError(f"{value:g}: give a share of one GPU (0.25) or whole GPUs (1, 2)")
        return value


class Ablation(_Strict):
    """An ablation study: which recipe, what every variant shares, and the variants."""

    name: str = Field(
        description="Study name; the default output folder is runs/ablations/<name>/."
    )
    description: str = Field("", description="What the study asks.")
    base: str = Field(
        description="The base recipe, relative to the ablation file, or builtin:NAME for a "
        "built-in recipe."
    )
    set: list[str] = Field(
        default_factory=list,
        description="Overrides applied to every variant, before the variant's own.",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0],
        min_length=1,
        description="Every variant trains once per seed (recipe field 'seed'); the table shows the "
        "mean and the spread (sample standard deviation) across seeds.",
    )
    reference: str | None = Field(
        None,
        description="The variant the others are compared with; null = the first variant.",
    )
    metrics: list[MetricSpec] = Field(
        default_factory=list,
        description="Table columns; empty = every value the reference variant's runs report.",
    )
    variants: list[Variant] = Field(min_length=1, description="The arms of the study.")
    claims: list[Claim] = Field(
        default_factory=list,
        description="Pairwise comparisons to test (a permutation test per metric over the "
        "seeds, with the difference's 95% bootstrap interval).",
    )
    same_budget: list[str] = Field(
        default_factory=lambda: [
            "train.max_steps",
            "train.max_minutes",
            "train.grad_accum",
            "data.batch_size",
        ],
        description="Resolved-recipe fields every variant must share (the training budget); a "
        "variant that changes one of them is refused before anything trains.",
    )
    resources: RunResources = Field(
        default_factory=RunResources,
        description="CPUs and GPUs each run claims under --launcher processes or ray (the "
        "command line's --cpus-per-run/--gpus-per-run override them); the local launcher "
        "ignores them.",
    )

    @field_validator("set")
    @classmethod
    def _overrides_ok(cls, value: list[str]) -> list[str]:
        return _check_overrides(value)

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_strings(cls, value):
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("seeds must be distinct")
        return value

    @model_validator(mode="after")
    def _names(self) -> Ablation:
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be distinct: {', '.join(dupes)}")
        if self.reference is not None and self.reference not in names:
            raise ValueError(f"reference '{self.reference}' is not a variant ({', '.join(names)})")
        columns = [m.name for m in self.metrics]
        for k, claim in enumerate(self.claims):
            for side in (claim.a, claim.b):
                if side not in names:
                    raise ValueError(f"claims.{k}: '{side}' is not a variant ({', '.join(names)})")
            if claim.a == claim.b:
                raise ValueError(f"claims.{k}: compares '{claim.a}' with itself")
            unknown = [m for m in claim.metrics if columns and m not in columns]
            if unknown:
                raise ValueError(
                    f"claims.{k}: {', '.join(unknown)} not among the metrics ({', '.join(columns)})"
                )
        return self

    @property
    def reference_variant(self) -> Variant:
        name = self.reference or self.variants[0].name
        return next(v for v in self.variants if v.name == name)


def read_ablation(path: str | Path) -> tuple[Ablation, Path]:
    """Read and check an ablation file; returns it with the base recipe's path resolved."""
    path = Path(path)
    try:
        if not path.is_file():
            raise AblationError(f"{path}: ablation file not found")
        raw = path.read_bytes()
        if len(raw) > MAX_RECIPE_BYTES:
            raise AblationError(f"{path}: larger than {MAX_RECIPE_BYTES} bytes")
        text = raw.decode("utf-8")
        duplicates = duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        if duplicates:
            raise AblationError("\n".join(f"{path}:{d}" for d in duplicates))
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise AblationError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AblationError(f"{path}{line}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise AblationError(f"{path}: an ablation file must be a mapping")
    try:
        spec = Ablation.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (not allowed here)" + did_you_mean(Ablation, err["loc"])
            # a whole-file check (names, references, claims) names its own field in msg
            lines.append(f"{path}: {loc}: {msg}" if loc else f"{path}: {msg}")
        raise AblationError("\n".join(lines)) from None
    for variant in spec.variants:  # a variant's own recipe must exist before anything trains
        if variant.base is not None:
            variant_base(path, spec, variant)
    return spec, _resolve_base(path, spec.base, "base")


def _resolve_base(path: Path, ref: str, where: str) -> Path:
    if is_builtin(ref):
        try:
            return builtin_recipe(ref, f"{path}: {where}").resolve()
        except RecipeError as exc:
            raise AblationError(str(exc)) from None
    found = (path.parent / ref).resolve()
    if not found.is_file():
        raise AblationError(f"{path}: {where}: recipe {found} not found")
    return found


def variant_base(path: str | Path, spec: Ablation, variant: Variant) -> Path:
    """The recipe a variant starts from: its own ``base``, else the study's."""
    ref, where = (
        (variant.base, f"variant '{variant.name}': base")
        if variant.base is not None
        else (spec.base, "base")
    )
    return _resolve_base(Path(path), ref, where)
