"""Variable sources, precedence, complex values, lookups and cycles."""

from __future__ import annotations

import pytest

from lakestack.errors import ReferenceError_

from .conftest import Loader, Writer

BUNDLE = """
bundle: {name: demo}
variables:
  catalog: {description: the catalog, default: base}
  schema: {default: "${var.catalog}_schema"}
  target_name: {default: "${bundle.target}"}
  cluster:
    type: complex
    default: {workers: 2, tags: {team: ml}}
  warehouse:
    lookup: {warehouse: Shared Warehouse}
targets:
  dev:
    default: true
  over:
    variables:
      catalog: from_target
  over_default_form:
    variables:
      catalog: {default: from_target_default}
      cluster: {workers: 8}
"""


def test_defaults_and_variables_referencing_others(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": BUNDLE})
    bundle = load()
    assert bundle.variables["catalog"] == "base"
    assert bundle.variables["schema"] == "base_schema"
    assert bundle.variables["target_name"] == "dev"
    assert bundle.variables["cluster"] == {"workers": 2, "tags": {"team": "ml"}}


def test_lookup_resolves_to_the_name_with_a_warning(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": BUNDLE})
    bundle = load()
    assert bundle.variables["warehouse"] == "Shared Warehouse"
    assert any("lakestack.yml:9" in w and "resolves to the name" in w for w in bundle.warnings)


@pytest.mark.parametrize(
    ("target", "cli", "env", "expected"),
    [
        ("dev", {}, {}, "base"),
        ("over", {}, {}, "from_target"),
        ("over_default_form", {}, {}, "from_target_default"),
        ("over", {}, {"BUNDLE_VAR_catalog": "from_env"}, "from_env"),
        ("over", {"catalog": "from_cli"}, {"BUNDLE_VAR_catalog": "from_env"}, "from_cli"),
    ],
)
def test_precedence(
    write: Writer,
    load: Loader,
    target: str,
    cli: dict[str, str],
    env: dict[str, str],
    expected: str,
) -> None:
    write({"lakestack.yml": BUNDLE})
    bundle = load(target=target, variables=cli, environ=env)
    assert bundle.variables["catalog"] == expected
    assert bundle.variables["schema"] == f"{expected}_schema"


def test_complex_override_and_field_reference(write: Writer, load: Loader) -> None:
    write(
        {
            "lakestack.yml": BUNDLE
            + """
resources:
  experiments:
    e:
      name: "workers-${var.cluster.workers}-${var.cluster.tags.team}"
      tags: ${var.cluster.tags}
"""
        }
    )
    dev = load()
    assert dev.resources.experiments["e"].name == "workers-2-ml"
    assert dev.resources.experiments["e"].tags == {"team": "ml"}


def test_complex_target_override(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": BUNDLE})
    assert load(target="over_default_form").variables["cluster"] == {"workers": 8}


def test_missing_value(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": "bundle: {name: d}\nvariables:\n  catalog: {description: x}\n"})
    with pytest.raises(
        ReferenceError_,
        match=r"^lakestack.yml:3: catalog: variable 'catalog' has no value; set a default, "
        r"a target override, "
        r"--var catalog=... or BUNDLE_VAR_catalog",
    ):
        load()


def test_variable_cycle(write: Writer, load: Loader) -> None:
    write(
        {
            "lakestack.yml": """
            bundle: {name: d}
            variables:
              a: {default: "${var.b}"}
              b: {default: "x-${var.a}"}
            """
        }
    )
    with pytest.raises(ReferenceError_, match=r"cycle: var.a -> var.b -> var.a"):
        load()


def test_undeclared_override(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": "bundle: {name: d}\nvariables:\n  catalog: {default: x}\n"})
    with pytest.raises(ReferenceError_, match=r"--var sets variable 'catalgo'.*'catalog'"):
        load(variables={"catalgo": "y"})


def test_complex_value_needs_type(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": "bundle: {name: d}\nvariables:\n  c: {default: {a: 1}}\n"})
    with pytest.raises(ReferenceError_, match=r"lakestack.yml:3: .*declare it with type: complex"):
        load()
