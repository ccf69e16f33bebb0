"""ModelRegistry on a real SQLite MLflow registry: aliases, tags, deploy, rollback, experiments."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lakestack.errors import ModelNotFoundError, RegistryError
from lakestack.registry import ModelRegistry
from lakestack.registry.client import CHAMPION_HISTORY_TAG, CHAMPION_SINCE_TAG

pytestmark = pytest.mark.integration


def test_aliases_are_stored_lower_case_and_found_in_any_case(
    registry: ModelRegistry, model: str
) -> None:
    registry.set_alias(model, "Champion", 2)
    assert registry.get_model(model).aliases == {"champion": 2}
    assert registry.alias_version(model, "CHAMPION") == 2
    found = registry.get_version(model, "ChAmPiOn")
    assert (found.version, found.aliases) == (2, ["champion"])


def test_an_alias_set_in_another_case_by_plain_mlflow_is_replaced(
    registry: ModelRegistry, model: str
) -> None:
    registry.client.set_registered_model_alias(model, "Challenger", "1")
    assert registry.alias_version(model, "challenger") == 1
    registry.set_alias(model, "challenger", 3)
    assert registry.get_model(model).aliases == {"challenger": 3}
    registry.delete_alias(model, "CHALLENGER")
    registry.delete_alias(model, "challenger")  # missing: no-op
    assert registry.get_model(model).aliases == {}


def test_missing_model_version_and_alias_name_what_exists(
    registry: ModelRegistry, model: str
) -> None:
    registry.set_alias(model, "challenger", 1)
    with pytest.raises(ModelNotFoundError, match=rf"^model {model} has no version 7 "):
        registry.get_version(model, 7)
    with pytest.raises(ModelNotFoundError) as info:
        registry.get_version(model, 9)
    assert str(info.value) == (
        f"model {model} has no version 9 (versions: 1, 2, 3); "
        f"see them with: lakestack models versions {model}"
    )
    with pytest.raises(ModelNotFoundError) as info:
        registry.get_version(model, "Champion")
    assert str(info.value) == f"model {model} has no alias 'champion' (aliases: challenger)"
    typo = model[:-1] + "x"
    with pytest.raises(ModelNotFoundError) as info:
        registry.versions(typo)
    message = str(info.value)
    assert message.startswith(f"model {typo} does not exist (models: ")
    assert model in message
    assert message.endswith("?") and "did you mean main.reg.m" in message


def test_versions_newest_first_and_list_by_prefix(registry: ModelRegistry, model: str) -> None:
    assert [v.version for v in registry.versions(model)] == [3, 2, 1]
    v = registry.versions(model)[0]
    assert (v.name, v.model_uri, v.status) == (model, f"models:/{model}/3", "READY")
    assert [m.name for m in registry.list_models(model)] == [model]
    assert registry.get_model(model).latest_version == 3
    assert registry.list_models("nothing.") == []


def test_create_model_is_idempotent_and_updates_description_and_tags(
    registry: ModelRegistry,
) -> None:
    name = "main.reg.created"
    first = registry.create_model(name, description="one", tags={"team": "a"})
    again = registry.create_model(name, description="two", tags={"owner": "b"})
    assert first.description == "one"
    assert (again.description, again.tags) == ("two", {"team": "a", "owner": "b"})
    assert again.latest_version is None
    registry.delete_model(name)
    registry.delete_model(name)  # missing: no-op
    assert not registry.has_model(name)


def test_version_tags(registry: ModelRegistry, model: str) -> None:
    registry.set_alias(model, "challenger", 2)
    registry.set_version_tags(model, "challenger", {"approval": "Approved", "n": 1})  # type: ignore[dict-item]
    info = registry.get_version(model, 2)
    assert info.tags == {"approval": "Approved", "n": "1"}
    assert info.approval == "Approved"
    assert info.deployment_state is None
    registry.delete_version_tag(model, 2, "n")
    registry.delete_version_tag(model, 2, "n")  # missing: no-op
    assert registry.get_version(model, 2).tags == {"approval": "Approved"}
    with pytest.raises(ModelNotFoundError, match="has no version 5"):
        registry.set_version_tags(model, 5, {"a": "b"})


def test_deploy_moves_champion_keeps_history_and_removes_challenger(
    registry: ModelRegistry, model: str
) -> None:
    first = registry.deploy(model, 1)
    assert (first.version, first.previous, first.changed) == (1, None, True)
    registry.set_alias(model, "challenger", 2)
    second = registry.deploy(model, "Challenger")
    assert (second.version, second.previous) == (2, 1)
    assert registry.get_model(model).aliases == {"champion": 2}
    assert registry.champion_history(model) == [1]

    registry.set_alias(model, "challenger", 3)
    again = registry.deploy(model, 2)  # already champion: nothing moves
    assert (again.version, again.previous, again.changed) == (2, 2, False)
    assert registry.get_model(model).aliases == {"champion": 2, "challenger": 3}
    assert registry.champion_history(model) == [1]

    registry.deploy(model, 3)
    assert registry.champion_history(model) == [1, 2]
    assert json.loads(registry.get_model(model).tags[CHAMPION_HISTORY_TAG]) == [1, 2]


def test_rollback_restores_previous_champions_in_order(registry: ModelRegistry, model: str) -> None:
    for version in (1, 2, 3):
        registry.deploy(model, version)
    back = registry.rollback(model)
    assert (back.version, back.previous) == (2, 3)
    assert registry.rollback(model).version == 1
    before = registry.get_model(model)
    with pytest.raises(RegistryError) as info:
        registry.rollback(model)
    assert str(info.value) == (
        f"model {model} has no previous champion to roll back to (champion is version 1); "
        "deploy a version instead"
    )
    assert registry.get_model(model) == before


def test_rollback_skips_deleted_versions(registry: ModelRegistry, model: str) -> None:
    for version in (1, 2, 3):
        registry.deploy(model, version)
    registry.client.delete_model_version(model, "2")
    assert registry.rollback(model).version == 1


def test_deploy_and_rollback_record_when_the_champion_changed(
    registry: ModelRegistry, model: str
) -> None:
    assert registry.get_version(model, 1).champion_since is None  # never champion
    before = datetime.now(timezone.utc)
    registry.deploy(model, 1)
    registry.deploy(model, 2)
    first = registry.get_version(model, 1).champion_since
    second = registry.get_version(model, 2).champion_since
    assert first is not None and second is not None
    assert before <= first <= second <= datetime.now(timezone.utc)
    registry.deploy(model, 2)  # already champion: the time stays
    assert registry.get_version(model, 2).champion_since == second
    registry.rollback(model)
    back = registry.get_version(model, 1).champion_since
    assert back is not None and back >= second
    assert registry.get_version(model, 1).tags[CHAMPION_SINCE_TAG] == back.isoformat()


def test_bad_deploy_changes_nothing(registry: ModelRegistry, model: str) -> None:
    registry.deploy(model, 1)
    before = registry.get_model(model)
    with pytest.raises(ModelNotFoundError, match="has no version 4"):
        registry.deploy(model, 4)
    with pytest.raises(ModelNotFoundError, match="has no alias 'challenger'"):
        registry.deploy(model, "challenger")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        registry.deploy(model + "_nope", 1)
    assert registry.get_model(model) == before


def test_experiments_are_created_once_in_the_workspace_and_restored(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    name = "/Users/me/iris"
    first = registry.create_experiment(name, tags={"team": "ml"})
    assert registry.create_experiment(name) == first
    location = registry.client.get_experiment(first).artifact_location
    root = Path(registry.tracking.tracking_uri.removeprefix("sqlite:///")).parent
    assert location == f"{(root / 'mlartifacts').as_uri()}/{first}"
    assert registry.get_experiment_tags(name) == {"team": "ml"}
    registry.delete_experiment(name)
    assert registry.get_experiment_tags(name) is None
    registry.delete_experiment(name)  # already deleted: no-op
    registry.delete_experiment("/nobody")  # missing: no-op
    assert registry.create_experiment(name) == first
    assert registry.client.get_experiment(first).lifecycle_stage == "active"


def test_copy_in_one_registry_keeps_lineage_but_not_approval(
    registry: ModelRegistry, model: str
) -> None:
    registry.set_version_tags(
        model,
        2,
        {
            "lakestack.lineage.run_id": "abc",
            "lakestack.lineage.input_tables": '{"main.a.t": 4}',
            "approval": "Approved",
            "lakestack.deployment_state": "SUCCEEDED",
            "team": "ml",
        },
    )
    registry.deploy(model, 2)
    copy = registry.copy_version(model, 2, model + "_prod")
    assert (copy.name, copy.version) == (model + "_prod", 1)
    assert copy.approval is None and copy.deployment_state is None
    assert copy.champion_since is None  # champion in its source registry, not in the copy's
    assert copy.tags["team"] == "ml"
    assert copy.lineage == {
        "run_id": "abc",
        "input_tables": {"main.a.t": 4},
        "promoted_from": f"{model}/2",
    }
    assert registry.get_version(model + "_prod", 1).source == f"models:/{model}/2"
    with pytest.raises(RegistryError, match="onto itself"):
        registry.copy_version(model, 2, model)
    with pytest.raises(ModelNotFoundError, match="has no version 8"):
        registry.copy_version(model, 8, model + "_prod")
    assert [v.version for v in registry.versions(model + "_prod")] == [1]


def test_versions_show_their_aliases(registry: ModelRegistry, model: str) -> None:
    registry.set_alias(model, "champion", 3)
    registry.set_alias(model, "Challenger", 1)
    registry.set_alias(model, "best", 3)
    assert [(v.version, v.aliases) for v in registry.versions(model)] == [
        (3, ["best", "champion"]),
        (2, []),
        (1, ["challenger"]),
    ]
