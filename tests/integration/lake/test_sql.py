"""SQL over the catalog: three-level names, time travel, and writes mapped onto Delta tables."""

from __future__ import annotations

import pytest

from lakestack.errors import ConstraintError, LakeError, NotFoundError
from lakestack.lake import Catalog

pytestmark = pytest.mark.integration


def test_ddl_dml_and_queries(catalog: Catalog) -> None:
    catalog.sql(
        """
        CREATE SCHEMA IF NOT EXISTS main.ml COMMENT 'models; and features';
        CREATE TABLE main.ml.scores (id BIGINT PRIMARY KEY, score DOUBLE NOT NULL, note VARCHAR);
        INSERT INTO main.ml.scores VALUES (1, 0.5, 'a'), (2, 0.9, 'b');
        INSERT INTO main.ml.scores (id, score) SELECT 3, 0.1;
        """
    )
    info = catalog.table("main.ml.scores").info
    assert (info.primary_keys, info.not_null) == (["id"], ["id", "score"])
    joined = catalog.sql(
        "SELECT s.id, scores.score FROM main.ml.scores s JOIN main.ml.scores ON s.id = scores.id "
        "WHERE s.score > :low ORDER BY s.id",
        {"low": 0.2},
    )
    assert joined.to_pylist() == [{"id": 1, "score": 0.5}, {"id": 2, "score": 0.9}]
    assert catalog.sql("SELECT count(*) AS n FROM main.ml.scores VERSION AS OF 1").to_pylist() == [
        {"n": 2}
    ]
    assert catalog.sql("DELETE FROM main.ml.scores WHERE score < 0.2").to_pylist() == [
        {"num_affected_rows": 1}
    ]
    catalog.sql(
        "CREATE OR REPLACE TABLE main.ml.top AS SELECT id, 'main.ml.scores' AS src FROM main.ml.scores WHERE score > 0.6"
    )
    assert catalog.sql("SELECT * FROM main.ml.top").to_pylist() == [
        {"id": 2, "src": "main.ml.scores"}
    ]
    catalog.sql("INSERT OVERWRITE main.ml.top SELECT 7, 'x'")
    assert catalog.table("main.ml.top").read().to_pylist() == [{"id": 7, "src": "x"}]
    catalog.sql("DROP TABLE main.ml.top; DROP TABLE IF EXISTS main.ml.top")
    assert not catalog.table_exists("main.ml.top")


def test_sql_errors_name_what_is_wrong(catalog: Catalog) -> None:
    catalog.sql("CREATE TABLE main.sales.t (id INT PRIMARY KEY)")
    catalog.sql("INSERT INTO main.sales.t VALUES (1)")
    with pytest.raises(
        NotFoundError, match=r"table main\.sales\.nope does not exist \(tables in main\.sales: t\)"
    ):
        catalog.sql("SELECT * FROM main.sales.nope")
    with pytest.raises(
        ConstraintError, match=r"main\.sales\.t: the primary key \(id=1\) exists already"
    ):
        catalog.sql("INSERT INTO main.sales.t VALUES (1)")
    with pytest.raises(
        LakeError, match=r"^SQL failed: Parser Error: syntax error at or near \"SELEC\""
    ):
        catalog.sql("SELEC 1")
    with pytest.raises(LakeError, match="the query uses parameter 'x', which has no value"):
        catalog.sql("SELECT $x")
    with pytest.raises(NotFoundError, match=r"main\.sales\.t has no version 5"):
        catalog.sql("SELECT * FROM main.sales.t VERSION AS OF 5")
