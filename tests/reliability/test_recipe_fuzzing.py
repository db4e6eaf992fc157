"""Hostile and broken recipes: random mutations of a valid recipe end in a valid recipe or a
user error (one ``file:line: path: message`` line per problem, exit code 2), never a traceback.

The fuzzing runs in-process on ``read_recipe`` + ``validate_recipe`` (fast enough for 500+
examples in CI); a handful of hostile recipes also go through ``main([...])``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_helpers import MICRO

from t2i_stages.cli.main import main
from t2i_stages.errors import RecipeError, T2IError
from t2i_stages.recipe import read_recipe, resolved_recipe, validate_recipe

BASE_TEXT = MICRO.read_text()
BASE = yaml.safe_load(BASE_TEXT)
WORKDIR = Path(tempfile.mkdtemp(prefix="t2i-fuzz-"))
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # nothing written into the repository
    print_blob=True,
)

# strings a hostile or careless recipe might hold where a name or number is expected
NASTY = [
    "/etc/passwd",
    "../../plugins/evil.py",
    "os.system",
    "pkg.mod:func",
    "C:\\evil",
    "~/x",
    "https://example.com/x",
    "/dev/zero",
    "",
    " ",
    "\n",
    "a\nb",
    "$(rm -rf /)",
    "{{ jinja }}",
    "%s%s%n",
    "🙂",
    "shapes",
    "stagewise",
    "damsm",
    "bce_mismatch",
    "ca",
    "initial",
    "refine",
    "dynamic_memory",
]
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.sampled_from(NASTY),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(text, st.sampled_from(NASTY)), inner, max_size=4),
    ),
    max_leaves=12,
)


def _paths(node, prefix=()):
    """Every (path) to a value inside nested dicts and lists, the root excluded."""
    out = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _parent(data, path):
    node = data
    for key in path[:-1]:
        node = node[key]
    return node


def _mutate(draw, data):
    paths = _paths(data)
    path = draw(st.sampled_from(paths))
    parent, key = _parent(data, path), path[-1]
    op = draw(st.sampled_from(["replace", "delete", "add_key", "wrap", "rename", "duplicate"]))
    if op == "replace":
        parent[key] = draw(values)
    elif op == "delete":
        del parent[key]
    elif op == "add_key" and isinstance(parent[key], dict):
        parent[key][draw(st.one_of(text, st.sampled_from(NASTY)))] = draw(values)
    elif op == "wrap":
        parent[key] = [parent[key]]
    elif op == "rename" and isinstance(parent, dict):
        parent[draw(st.one_of(text, st.sampled_from(NASTY)))] = parent.pop(key)
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    else:
        parent[key] = draw(values)


def _check(path: Path, overrides=()) -> str:
    """Validate in-process; return "ok" or "error", fail on anything but a user error."""
    try:
        recipe = validate_recipe(read_recipe(path, list(overrides)), _REGISTRY[0])
    except T2IError as exc:
        lines = str(exc).splitlines()
        assert lines, "an error without a message"
        for line in lines:
            assert line.strip(), f"empty line in {lines!r}"
        if isinstance(exc, RecipeError):
            assert lines == exc.lines
            for line in lines:
                assert line.startswith((str(path), "--set ", str(MICRO))) or ": " in line, line
        return "error"
    # a valid recipe must also survive what `run` does first: the resolved recipe as YAML
    yaml.safe_dump(resolved_recipe(recipe, _REGISTRY[0]))
    return "ok"


_REGISTRY: list = []


@pytest.fixture(autouse=True)
def _registry(registry):
    _REGISTRY[:] = [registry]


def _write(data_or_text, name="fuzz.yaml") -> Path:
    path = WORKDIR / name
    if isinstance(data_or_text, str):
        path.write_text(data_or_text, encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(data_or_text, allow_unicode=True), encoding="utf-8")
    return path


def test_the_unmutated_recipe_is_valid():
    assert _check(_write(copy.deepcopy(BASE))) == "ok"


@settings(FUZZ, max_examples=500)
@given(st.data())
def test_structural_mutations_end_in_a_recipe_or_a_user_error(data):
    recipe = copy.deepcopy(BASE)
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(data.draw, recipe)
    _check(_write(recipe))


@settings(FUZZ, max_examples=100)
@given(
    st.lists(
        st.tuples(st.integers(0, len(BASE_TEXT)), st.integers(0, 8), text | st.sampled_from(NASTY)),
        min_size=1,
        max_size=3,
    )
)
def test_text_mutations_end_in_a_recipe_or_a_user_error(edits):
    body = BASE_TEXT
    for pos, cut, insert in edits:
        pos = min(pos, len(body))
        body = body[:pos] + insert + body[pos + cut :]
    _check(_write(body))


override_keys = st.lists(
    st.one_of(
        st.sampled_from(["train", "data", "losses", "0", "1", "params", "type", "stages", "seed"]),
        text,
    ),
    min_size=0,
    max_size=4,
).map(".".join)


@settings(FUZZ, max_examples=100)
@given(st.lists(st.tuples(override_keys, st.one_of(text, st.sampled_from(NASTY))), max_size=3))
def test_random_overrides_end_in_a_recipe_or_a_user_error(pairs):
    _check(MICRO, [f"{k}={v}" for k, v in pairs])


# ---- a plugin name must be a name, never a path ----------------------------------------------

SLOT_PATHS = [
    ("generator", "type"),
    ("data", "dataset", "type"),
    ("losses", 0, "type"),
    ("generator", "params", "stages", 1, "params", "fusion", "type"),
    ("generator", "params", "stages", 0, "params", "conditioning", "type"),
]
PATHLIKE = [
    "/etc/passwd",
    "../../plugins/evil.py",
    "./evil",
    "evil.py",
    "os.system",
    "pkg.module:func",
    "C:\\evil",
    "~/evil",
    "https://example.com/evil.py",
    "evil/../../x",
]


def _set(data, path, value):
    _parent(data, path)[path[-1]] = value


@pytest.mark.parametrize("where", SLOT_PATHS, ids=lambda p: ".".join(map(str, p)))
@pytest.mark.parametrize("name", PATHLIKE)
def test_a_path_where_a_plugin_name_is_expected_is_refused(where, name, tmp_path):
    recipe = copy.deepcopy(BASE)
    _set(recipe, where, name)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError) as err:
        validate_recipe(read_recipe(path), _REGISTRY[0])
    dotted = ".".join(map(str, where))
    (line,) = [x for x in err.value.lines if dotted in x]
    assert line.startswith(f"{path}:") and "never import paths or files" in line, line


@settings(FUZZ, max_examples=60)
@given(
    st.sampled_from(SLOT_PATHS),
    text.filter(
        lambda s: (
            not s[:1].isascii()
            or not s[:1].isalpha()
            or any(not (c.isascii() and (c.isalnum() or c in "_-")) for c in s)
        )
    ),
)
def test_no_string_outside_the_name_alphabet_reaches_the_registry(where, name):
    recipe = copy.deepcopy(BASE)
    _set(recipe, where, name)
    with pytest.raises(RecipeError) as err:
        validate_recipe(read_recipe(_write(recipe)), _REGISTRY[0])
    dotted = ".".join(map(str, where))
    assert any(dotted in x and "is not a plugin name" in x for x in err.value.lines)


# ---- through the CLI -------------------------------------------------------------------------

HOSTILE = {
    "deep-nesting": BASE_TEXT + "description: " + "[" * 3000 + "]" * 3000 + "\n",
    "extends-dev-zero": "extends: /dev/zero\n" + BASE_TEXT,
    "extends-folder": "extends: /\n" + BASE_TEXT,
    "path-as-plugin": BASE_TEXT.replace("type: stagewise", "type: ../../evil.py", 1),
    "nan-weight": BASE_TEXT.replace("weight: 1.0", "weight: .nan"),
    "newline-in-name": BASE_TEXT.replace("type: ca_kl", 'type: "ca_kl\\nerror: fake line"'),
    "alias-bomb": "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n" + BASE_TEXT,
    "binary": "\x00\x01\x02garbage\xff",
    "not-a-mapping": "- 1\n- 2\n",
    "empty": "",
}


def _cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_recipes_through_the_cli_exit_2_with_error_lines(name, tmp_path):
    path = tmp_path / f"{name}.yaml"
    path.write_text(HOSTILE[name], encoding="utf-8", errors="surrogateescape")
    code, out, err = _cli(["validate", str(path)])
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert lines and "Traceback" not in err
    assert all(line.startswith("error: ") for line in lines), lines
    if name == "newline-in-name":  # the quoted newline cannot forge a second error line
        assert not any(line.startswith("error: fake line") for line in lines), lines


def test_the_valid_recipe_through_the_cli_exits_0():
    code, out, err = _cli(["validate", str(MICRO)])
    assert code == 0 and "ok (micro)" in out, err


@settings(FUZZ, max_examples=15)
@given(st.data())
def test_a_few_mutations_through_the_cli(data):
    recipe = copy.deepcopy(BASE)
    _mutate(data.draw, recipe)
    code, _, err = _cli(["validate", str(_write(recipe, "cli.yaml"))])
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert all(line.startswith("error: ") for line in err.strip().splitlines())
