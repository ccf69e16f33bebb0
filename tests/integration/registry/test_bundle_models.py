"""The bundle's experiments and registered models through the real Workspace: deploy, destroy,
promotion between targets, and the built-in deploy task in a job."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakestack.console import NoopConsole
from lakestack.errors import ModelNotFoundError, RegistryError
from lakestack.registry import MANAGED_BY_TAG, ModelRegistry
from lakestack.registry.resources import APPROVERS_TAG
from lakestack.workspace import Workspace

pytestmark = pytest.mark.integration

BUNDLE = """
bundle: {name: iris}
variables:
  catalog: {default: "${bundle.target}"}
targets:
  dev: {default: true}
  prod:
    lakestack: {root: .lakestack-prod}
resources:
  experiments:
    training:
      name: /Shared/iris-${bundle.target}
      description: training runs
      tags: [{key: team, value: ml}]
  registered_models:
    clf:
      name: clf
      catalog_name: ${var.catalog}
      schema_name: iris
      comment: the iris classifier
      tags: {team: ml}
      aliases: [{alias_name: champion, version_num: 1}]
  jobs:
    deployment:
      parameters: [{name: model_name, default: ""}, {name: model_version, default: ""}]
      tasks:
        - task_key: deploy
          python_wheel_task:
            package_name: lakestack
            entry_point: deploy
            named_parameters:
              model_name: "{{job.parameters.model_name}}"
              model_version: "{{job.parameters.model_version}}"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "iris"
    root.mkdir()
    (root / "lakestack.yml").write_text(textwrap.dedent(BUNDLE), encoding="utf-8")
    (root / "artifacts").mkdir()
    (root / "artifacts" / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    return root


@pytest.fixture
def open_ws(project: Path) -> Iterator[type[Workspace]]:
    opened: list[Workspace] = []

    class Opener(Workspace):
        @classmethod
        def at(cls, target: str = "dev") -> Workspace:
            ws = Workspace.open(project, target=target, console=NoopConsole())
            opened.append(ws)
            return ws

    yield Opener
    for ws in opened:
        ws.close()


def messages(ws: Workspace) -> list[str]:
    console = ws.console
    assert isinstance(console, NoopConsole)
    return [text for _, text in console.messages]


def add_version(registry: ModelRegistry, name: str, project: Path) -> int:
    mv = registry.client.create_model_version(name, source=(project / "artifacts").as_uri())
    return int(mv.version)


def test_deploy_creates_experiments_and_models_and_destroy_deletes_its_own(
    open_ws: type[Workspace], project: Path
) -> None:
    ws = open_ws.at()  # type: ignore[attr-defined]
    ws.deploy()
    assert messages(ws) == [
        "Created experiment /Shared/iris-dev",
        "Created registered model dev.iris.clf",
    ]
    model = ws.registry.get_model("dev.iris.clf")
    assert model.description == "the iris classifier"
    # who may approve is recorded as deployed (an empty list: anyone)
    assert model.tags == {"team": "ml", MANAGED_BY_TAG: "iris/dev", APPROVERS_TAG: "[]"}
    assert model.aliases == {}  # aliases listed in the bundle are not forced
    assert ws.registry.get_experiment_tags("/Shared/iris-dev") == {
        "team": "ml",
        "mlflow.note.content": "training runs",
        MANAGED_BY_TAG: "iris/dev",
    }
    assert (project / ".lakestack" / "mlflow.db").exists()

    again = open_ws.at()  # type: ignore[attr-defined]
    again.deploy()
    assert not [m for m in messages(again) if m.startswith("Created")]

    removed = again.destroy()
    assert removed["deleted_registry"] == [
        "experiment /Shared/iris-dev",
        "registered model dev.iris.clf",
    ]
    assert removed["kept_registry"] == []
    assert not again.registry.has_model("dev.iris.clf")
    assert again.registry.get_experiment_tags("/Shared/iris-dev") is None


def test_destroy_keeps_a_model_the_target_did_not_create(open_ws: type[Workspace]) -> None:
    ws = open_ws.at()  # type: ignore[attr-defined]
    ws.registry.create_model("dev.iris.clf", description="registered by a training run")
    ws.deploy()
    model = ws.registry.get_model("dev.iris.clf")
    assert MANAGED_BY_TAG not in model.tags
    assert model.description == "the iris classifier"
    removed = ws.destroy()
    assert removed["kept_registry"] == ["registered model dev.iris.clf"]
    assert "Kept registered model dev.iris.clf: target dev did not create it" in messages(ws)
    assert ws.registry.has_model("dev.iris.clf")


def test_promote_copies_a_version_into_the_other_targets_registry(
    open_ws: type[Workspace], project: Path
) -> None:
    dev, prod = open_ws.at("dev"), open_ws.at("prod")  # type: ignore[attr-defined]
    dev.deploy()
    prod.deploy()
    assert dev.registry.registry_uri != prod.registry.registry_uri
    add_version(dev.registry, "dev.iris.clf", project)
    dev.registry.set_alias("dev.iris.clf", "champion", 1)

    copy = dev.promote("dev.iris.clf", "champion", "prod")

    assert (copy.name, copy.version) == ("prod.iris.clf", 1)
    assert copy.lineage["promoted_from"] == "dev.iris.clf/1"
    assert [v.version for v in prod.registry.versions("prod.iris.clf")] == [1]
    assert str(copy.source).startswith((project / ".lakestack-prod").as_uri())

    other = dev.promote("dev.iris.clf", 1, "prod", to_name="prod.iris.other")
    assert (other.name, other.version) == ("prod.iris.other", 1)
    dev.registry.create_model("main.iris.clf")
    add_version(dev.registry, "main.iris.clf", project)
    with pytest.raises(RegistryError) as info:
        dev.promote("main.iris.clf", 1, "prod")
    assert str(info.value) == (
        "cannot tell what model main.iris.clf is called in target prod: no registered_models "
        "resource is named main.iris.clf in target dev and its catalog is not the catalog "
        "variable; give the name with --to-name"
    )
    with pytest.raises(ModelNotFoundError, match=r"^model dev\.iris\.unknown does not exist"):
        dev.promote("dev.iris.unknown", 1, "prod")
    with pytest.raises(ModelNotFoundError, match="has no version 2"):
        dev.promote("dev.iris.clf", 2, "prod")
    assert [v.version for v in prod.registry.versions("prod.iris.clf")] == [1]


def test_the_deploy_task_makes_the_version_champion_in_a_job(
    open_ws: type[Workspace], project: Path
) -> None:
    ws = open_ws.at()  # type: ignore[attr-defined]
    ws.deploy()
    for _ in range(2):
        add_version(ws.registry, "dev.iris.clf", project)
    ws.registry.deploy("dev.iris.clf", 1)
    ws.registry.set_alias("dev.iris.clf", "challenger", 2)

    run = ws.run("deployment", {"model_name": "dev.iris.clf", "model_version": "2"})

    assert run.state == "SUCCESS", ws.logs(run.run_id)
    assert ws.registry.get_model("dev.iris.clf").aliases == {"champion": 2}
    assert ws.get_run(run.run_id)["task_values"] == {
        "deploy": {"model_name": "dev.iris.clf", "model_version": 2, "previous_version": 1}
    }
    failed = ws.run("deployment", {"model_name": "dev.iris.clf", "model_version": "7"})
    assert failed.state == "FAILED"
    task = ws.get_run(failed.run_id)["tasks"][0]
    assert task["error"].startswith("model dev.iris.clf has no version 7 (versions: 1, 2)")
    assert ws.registry.get_model("dev.iris.clf").aliases == {"champion": 2}
