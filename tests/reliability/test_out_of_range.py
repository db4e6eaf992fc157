"""Sizes, counts and rates out of range are validation errors with their place, never a hang,
a traceback or an allocator's crash later (``residual_blocks: 1e30`` used to hang ``summary``)."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel
from rel_helpers import MICRO

from t2i_stages.cli.main import main
from t2i_stages.registry import load_registry

STAGE = "generator.params.stages.1.params"


@pytest.mark.parametrize(
    "override, says",
    [
        (
            f"{STAGE}.residual_blocks=100000",
            "residual_blocks: Input should be less than or equal to 256",
        ),
        (
            "discriminators.0.params.df=1000000000",
            "df: Input should be less than or equal to 16384",
        ),
        ("generator.params.gf=1.0e+30", "gf: Unable to parse input string as an integer"),
        (
            "generator.params.stages.0.params.upsamples=40",
            "upsamples: Input should be less than or equal to 10",
        ),
        ("train.optim_g.betas=[-3, 0.9]", "betas.0: Input should be greater than or equal to 0"),
        ("train.optim_d.betas=[0.5, 1.0]", "betas.1: Input should be less than 1"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "summary"])
def test_out_of_range_values_are_one_located_line(capsys, override, says, command):
    assert main([command, str(MICRO), "--set", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --set {override}: ") and says in err[0], err


# every kind whose params size something: networks, a matcher's pretraining, metrics, datasets
MODEL_KINDS = (
    "generator",
    "stage",
    "discriminator",
    "conditioning",
    "fusion",
    "text_encoder",
    "matcher",
    "metric",
    "dataset",
)


def _bounded(metadata) -> bool:
    """An upper bound among pydantic's constraints (also inside an Annotated Field(...))."""
    flat = [c for m in metadata for c in [m, *getattr(m, "metadata", [])]]
    return any(
        getattr(c, "le", None) is not None or getattr(c, "lt", None) is not None for c in flat
    )


def _int_fields(model: type[BaseModel], prefix: str = ""):
    """(path, metadata) of every int field, and of every int inside a list or tuple field."""
    for name, field in model.model_fields.items():
        args = typing.get_args(field.annotation) or (field.annotation,)
        if int in args and bool not in args:
            yield prefix + name, field.metadata
        for arg in args:  # list[Annotated[int, Field(le=...)]] and tuples of them
            inner = typing.get_args(arg)
            if typing.get_origin(arg) is typing.Annotated and inner and inner[0] is int:
                yield f"{prefix}{name}[]", list(arg.__metadata__)
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _int_fields(arg, f"{prefix}{name}.")


def test_every_size_of_a_built_in_model_component_has_an_upper_bound():
    registry = load_registry()
    unbounded = []
    for kind in MODEL_KINDS:
        for name in registry.names(kind):
            entry = registry.get(kind, name)
            if not entry.plugin.builtin:
                continue
            for path, metadata in _int_fields(entry.spec.params):
                if "seed" in path:
                    continue
                if not _bounded(metadata):
                    unbounded.append(f"{kind} '{name}': {path}")
    assert unbounded == []


def test_every_rate_of_a_matchers_pretraining_has_an_upper_bound():
    """Learning rate, weights, gammas, budgets: a typo (1e30) is a located validation error."""
    from t2i_stages.plugins.matchers.pretrain import PretrainParams

    floats = []
    for name, field in PretrainParams.model_fields.items():
        args = typing.get_args(field.annotation) or (field.annotation,)
        if float in args:
            floats.append(name)
            assert _bounded(field.metadata), name
        for arg in args:
            if typing.get_origin(arg) is typing.Annotated:
                floats.append(name)
                assert _bounded(arg.__metadata__), name
    assert {"lr", "weight_decay", "max_minutes", "gamma3", "betas"} <= set(floats)


@pytest.mark.parametrize(
    "override, says",
    [
        ("matcher.params.pretrain.lr=1.0e+30", "lr: Input should be less than or equal to 10"),
        ("matcher.params.pretrain.steps=1.0e+30", "steps: Unable to parse input string"),
        ("matcher.params.pretrain.betas=[0.5, 3]", "betas.1: Input should be less than 1"),
        ("data.dataset.params.resolutions=[8, 100000]", "resolutions.1: Input should be less than"),
        ("data.dataset.params.train_size=1000000000000", "train_size: Input should be less than"),
    ],
)
def test_pretraining_and_dataset_sizes_out_of_range_are_located(capsys, override, says):
    assert main(["validate", str(MICRO), "--set", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --set {override}: ") and says in err[0], err
