"""Plugin discovery, provenance, duplicates, broken plugins, allow and block lists."""

from __future__ import annotations

import importlib.metadata as md

import pytest

from t2i_stages.errors import DuplicateComponentError, UnknownComponentError
from t2i_stages.hookspecs import KIND_HOOKS
from t2i_stages.registry import load_registry


def test_builtins_register_through_the_entry_point_group():
    registry = load_registry()
    declared = {
        ep.name for ep in md.distribution("t2i-stages").entry_points if ep.group == "t2i_stages"
    }
    assert declared, "the package declares its built-ins as entry points"
    builtin = {name for name, info in registry.plugins.items() if info.builtin}
    assert declared <= builtin
    assert not registry.load_errors


def test_installed_distribution_adds_components(toy):
    registry = load_registry()
    entry = registry.get("fusion", "toy_fusion")
    assert entry.plugin.name == "acme"
    assert entry.plugin.package == "acme-t2i"
    assert entry.plugin.version == "0.1"
    assert "toy_gen" in registry.names("generator")


def test_no_entry_points_means_only_explicit_plugins(toy):
    import t2i_toy_plugin

    registry = load_registry(load_entrypoints=False, plugins=[("mine", t2i_toy_plugin)])
    assert registry.names("fusion") == ["toy_fusion", "toy_gate"]
    assert registry.get("fusion", "toy_fusion").plugin.name == "mine"


def test_duplicate_names_are_an_error_naming_both(toy, install_dist):
    install_dist("other-t2i", {"other": "t2i_toy_duplicate"}, version="2.0")
    with pytest.raises(DuplicateComponentError) as err:
        load_registry()
    msg = str(err.value)
    assert "toy_fusion" in msg and "'acme'" in msg and "'other'" in msg
    assert "acme-t2i 0.1" in msg and "other-t2i 2.0" in msg


def test_broken_plugin_is_reported_and_the_rest_works(toy, install_dist):
    install_dist("broken-t2i", {"broken": "t2i_toy_broken"})
    registry = load_registry()
    (err,) = registry.load_errors
    assert err.name == "broken" and err.entry_point == "t2i_toy_broken"
    assert "a_module_that_does_not_exist" in err.error
    assert "toy_fusion" in registry.names("fusion")


def test_plugin_raising_during_registration_is_reported_by_name(toy, install_dist):
    install_dist("raising-t2i", {"raising": "t2i_toy_raising"})
    registry = load_registry()
    assert [e.name for e in registry.load_errors] == ["raising"]
    assert "registration exploded" in registry.load_errors[0].error
    assert "toy_loss" in registry.names("loss")


def test_block_list_from_environment(toy, install_dist, monkeypatch):
    install_dist("other-t2i", {"other": "t2i_toy_duplicate"})
    monkeypatch.setenv("T2I_STAGES_DISABLE_PLUGINS", "other")
    registry = load_registry()  # the duplicate is gone, so no error
    assert "other" not in registry.plugins
    assert registry.get("fusion", "toy_fusion").plugin.name == "acme"


def test_allow_list_restricts_third_party_but_keeps_builtins(toy, install_dist, monkeypatch):
    install_dist("other-t2i", {"other": "t2i_toy_duplicate"})
    monkeypatch.setenv("T2I_STAGES_LOAD_PLUGINS", "other")
    registry = load_registry()
    assert "acme" not in registry.plugins
    assert registry.get("fusion", "toy_fusion").plugin.name == "other"
    assert any(info.builtin for info in registry.plugins.values())


def test_unknown_name_suggests_and_lists(toy):
    registry = load_registry()
    with pytest.raises(UnknownComponentError) as err:
        registry.get("fusion", "toy_fusoin")
    assert "did you mean 'toy_fusion'" in str(err.value)
    assert "toy_gate" in str(err.value)


def test_every_kind_has_a_hook():
    from t2i_stages.hookspecs import ComponentHooks

    for kind, hook in KIND_HOOKS.items():
        assert callable(getattr(ComponentHooks, hook)), kind


def test_a_misspelt_build_context_key_is_an_error_naming_it():
    """Each kind's context is a dataclass (t2i_stages.context): a typo is not swallowed."""
    from t2i_stages.errors import PluginError
    from t2i_stages.recipe.slots import FusionSlot

    registry = load_registry()
    slot = FusionSlot(type="affine")
    with pytest.raises(PluginError) as info:
        registry.build("fusion", slot, channel=8, text_dim=4)
    message = str(info.value)
    assert message.startswith("fusion 'affine': unknown build context key 'channel'; ")
    assert "did you mean 'channels'?" in message and "FusionContext" in message
    assert registry.build("fusion", slot, channels=8, text_dim=4) is not None
