"""``lakestack models`` in a subprocess, on a bundle whose registry the test fills in."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lakestack.registry import ModelRegistry, Tracking, tracking_uri_for
from tests.e2e.conftest import lakestack

pytestmark = pytest.mark.integration

BUNDLE = """
bundle: {name: iris}
variables:
  catalog: {default: "${bundle.target}"}
targets:
  dev: {default: true}
  prod: {}
resources:
  registered_models:
    clf: {name: clf, catalog_name: "${var.catalog}", schema_name: iris}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelRegistry]:
    """A bundle whose dev.iris.clf has versions 1-3, champion 3 (after 2), challenger 1."""
    root = tmp_path_factory.mktemp("cli") / "iris"
    root.mkdir()
    (root / "lakestack.yml").write_text(textwrap.dedent(BUNDLE), encoding="utf-8")
    registry = ModelRegistry(Tracking(tracking_uri_for(root / ".lakestack")))
    registry.create_model("dev.iris.clf", description="the classifier")
    for n in range(3):
        registry.client.create_model_version(
            "dev.iris.clf",
            source=root.as_uri(),
            tags={
                "lakestack.lineage.code_version": "0123456789abcdef",
                "lakestack.lineage.input_tables": f'{{"dev.iris.train": {n}}}',
                "team": "ml",
            },
        )
    registry.deploy("dev.iris.clf", 2)
    registry.deploy("dev.iris.clf", 3)
    registry.set_alias("dev.iris.clf", "Challenger", 1)
    registry.set_version_tags("dev.iris.clf", 3, {"lakestack.deployment_state": "SUCCEEDED"})
    return root, registry


def test_list_and_versions(project: tuple[Path, ModelRegistry]) -> None:
    root, _ = project
    listed = lakestack("models", "list", "dev.", "-o", "json", cwd=root)
    assert listed.code == 0, listed.err
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in listed.json()] == [
        ("dev.iris.clf", 3, {"champion": 3, "challenger": 1})
    ]

    shown = lakestack("models", "versions", "dev.iris.clf", cwd=root)
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0] == "Versions of dev.iris.clf"
    assert lines[1].split()[:5] == ["version", "aliases", "status", "deployment", "approval"]
    assert lines[2].split()[:4] == ["3", "champion", "READY", "SUCCEEDED"]
    assert "0123456789" in lines[2] and "dev.iris.train@v2" in lines[2] and "team=ml" in lines[2]
    assert "challenger" in lines[4]


def test_versions_as_json(project: tuple[Path, ModelRegistry]) -> None:
    root, _ = project
    shown = lakestack("models", "versions", "dev.iris.clf", "--output", "json", cwd=root)
    assert shown.code == 0, shown.err
    newest = shown.json()[0]
    assert (newest["version"], newest["aliases"], newest["deployment_state"]) == (
        3,
        ["champion"],
        "SUCCEEDED",
    )
    assert newest["lineage"] == {
        "code_version": "0123456789abcdef",
        "input_tables": {"dev.iris.train": 2},
    }


def test_bad_input_is_one_line_and_changes_nothing(project: tuple[Path, ModelRegistry]) -> None:
    root, registry = project
    before = registry.list_models()
    unknown = lakestack("models", "versions", "dev.iris.nope", cwd=root)
    assert (unknown.code, unknown.out) == (1, "")
    assert unknown.err.strip() == (
        "Error: model dev.iris.nope does not exist (models: dev.iris.clf); "
        "did you mean dev.iris.clf?"
    )
    version = lakestack("models", "promote", "dev.iris.clf", "9", "--to-target", "prod", cwd=root)
    assert version.code == 1
    assert version.err.strip() == (
        "Error: model dev.iris.clf has no version 9 (versions: 1, 2, 3); "
        "see them with: lakestack models versions dev.iris.clf"
    )
    assert registry.list_models() == before


def test_promote_then_rollback(project: tuple[Path, ModelRegistry]) -> None:
    root, registry = project
    promoted = lakestack(
        "models", "promote", "dev.iris.clf", "Champion", "--to-target", "prod", "-o", "json",
        cwd=root,
    )  # fmt: skip
    assert promoted.code == 0, promoted.err
    copy = promoted.json()
    assert (copy["name"], copy["version"], copy["deployment_state"]) == ("prod.iris.clf", 1, None)
    assert copy["lineage"]["promoted_from"] == "dev.iris.clf/3"

    back = lakestack("models", "rollback", "dev.iris.clf", cwd=root)
    assert back.code == 0, back.err
    assert back.out.strip() == "Rolled back dev.iris.clf: champion is version 2 (was version 3)"
    assert registry.alias_version("dev.iris.clf", "champion") == 2
    again = lakestack("models", "rollback", "dev.iris.clf", cwd=root)
    assert again.code == 1
    assert again.err.strip() == (
        "Error: model dev.iris.clf has no previous champion to roll back to "
        "(champion is version 2); deploy a version instead"
    )
