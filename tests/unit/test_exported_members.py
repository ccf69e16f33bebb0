"""The public API is what lakestack/__init__.py exports, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import lakestack


def test_public_names_are_pinned() -> None:
    assert lakestack.__all__ == [
        "Bundle",
        "LakestackError",
        "Workspace",
        "__version__",
        "dbutils",
        "load_bundle",
    ]
    for name in lakestack.__all__:
        assert getattr(lakestack, name) is not None


def test_lake_and_features_names_are_pinned() -> None:
    import lakestack.features
    import lakestack.lake

    assert lakestack.lake.__all__ == [
        "Catalog",
        "IngestResult",
        "Table",
        "TableInfo",
        "default_catalog",
        "ingest_files",
    ]
    assert lakestack.features.__all__ == [
        "FEATURE_SPEC_FILE",
        "LINEAGE_TAG",
        "FeatureEngineeringClient",
        "FeatureLookup",
        "FeatureSpec",
        "FeatureTable",
        "TrainingSet",
    ]
    for module in (lakestack.lake, lakestack.features):
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_importing_lakestack_loads_no_heavy_library() -> None:
    code = (
        "import sys, lakestack, lakestack.cli.main; "
        "heavy = {'sqlalchemy', 'pydantic', 'rich', 'nbclient', 'duckdb', 'psutil', 'yaml'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
