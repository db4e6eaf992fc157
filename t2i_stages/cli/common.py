"""Helpers shared by CLI commands."""

from __future__ import annotations

import argparse

from ..recipe import Recipe, load_recipe
from ..registry import Registry, load_registry


def add_set_arg(
    p: argparse.ArgumentParser | argparse._ArgumentGroup,
    help: str = "override a recipe field (repeatable), e.g. --set train.max_steps=10",
) -> None:
    """``--set KEY.PATH=VALUE`` (repeatable) into ``args.overrides``, as every command takes it."""
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE", help=help
    )


def add_recipe_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    if optional:
        p.add_argument("recipe", nargs="?", default=None, help="path of a YAML recipe")
    else:
        p.add_argument("recipe", help="path of a YAML recipe")
    add_set_arg(p)


def load_from_args(args: argparse.Namespace, build: bool = True) -> tuple[Recipe, Registry]:
    """The recipe the arguments name, validated in every phase (``build``: see
    ``validate_recipe``), and the registry it was checked against."""
    registry = load_registry()
    return load_recipe(args.recipe, args.overrides, registry, build=build), registry
