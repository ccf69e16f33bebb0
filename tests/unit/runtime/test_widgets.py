from __future__ import annotations

import pytest

from lakestack.runtime.dbutils import DBUtils
from lakestack.runtime.widgets import InputWidgetNotDefined, WidgetError

from .conftest import MakeContext


def test_undefined_widget_says_how_to_define_it(dbutils: DBUtils) -> None:
    with pytest.raises(
        InputWidgetNotDefined,
        match=r"widget 'alpha' is not defined; pass it as a task parameter \(base_parameters\) "
        r"or create it with dbutils.widgets.text\('alpha', default\)",
    ):
        dbutils.widgets.get("alpha")


def test_default_of_a_created_widget(dbutils: DBUtils) -> None:
    dbutils.widgets.text("alpha", "0.1", "Learning rate")
    assert dbutils.widgets.get("alpha") == "0.1"


def test_task_parameter_wins_over_default(dbutils: DBUtils, in_job: MakeContext) -> None:
    in_job(parameters={"alpha": "0.5"}, job_parameters={"catalog": "dev", "alpha": "9"})
    dbutils.widgets.text("alpha", "0.1")
    assert dbutils.widgets.get("alpha") == "0.5"
    assert dbutils.widgets.get("catalog") == "dev"
    assert dbutils.widgets.getAll() == {"alpha": "0.5", "catalog": "dev"}


def test_bound_parameters_replace_the_context(dbutils: DBUtils, in_job: MakeContext) -> None:
    in_job(parameters={"alpha": "0.5"})
    dbutils.widgets._bind({"beta": "2"})
    assert dbutils.widgets.get("beta") == "2"
    with pytest.raises(InputWidgetNotDefined, match="widget 'alpha'"):
        dbutils.widgets.get("alpha")


def test_dropdown_rejects_a_value_outside_its_choices(
    dbutils: DBUtils, in_job: MakeContext
) -> None:
    in_job(parameters={"env": "qa"})
    dbutils.widgets.dropdown("env", "dev", ["dev", "prod"])
    with pytest.raises(
        WidgetError,
        match="value 'qa' of dropdown widget 'env' is not one of its choices: 'dev', 'prod'",
    ):
        dbutils.widgets.get("env")


def test_dropdown_default_must_be_a_choice(dbutils: DBUtils) -> None:
    with pytest.raises(WidgetError, match="default value 'x' of dropdown widget 'env'"):
        dbutils.widgets.dropdown("env", "x", ["dev", "prod"])


def test_combobox_and_multiselect(dbutils: DBUtils, in_job: MakeContext) -> None:
    in_job(parameters={"free": "anything", "many": "a,c"})
    dbutils.widgets.combobox("free", "a", ["a", "b"])
    dbutils.widgets.multiselect("many", "a", ["a", "b", "c"])
    assert dbutils.widgets.get("free") == "anything"
    assert dbutils.widgets.get("many") == "a,c"


def test_remove_and_get_argument(dbutils: DBUtils) -> None:
    dbutils.widgets.text("a", "1")
    dbutils.widgets.text("b", "2")
    dbutils.widgets.remove("a")
    assert dbutils.widgets.getArgument("a", "fallback") == "fallback"
    assert dbutils.widgets.getArgument("b") == "2"
    with pytest.raises(InputWidgetNotDefined, match="widget 'a' is not defined"):
        dbutils.widgets.remove("a")
    dbutils.widgets.removeAll()
    assert dbutils.widgets.getAll() == {}
