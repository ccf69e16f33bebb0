"""Feature Engineering: feature tables, point-in-time training sets, models that look up their
features, and ``score_batch``.

``from lakestack.features import FeatureEngineeringClient, FeatureLookup`` replaces
``from databricks.feature_engineering import FeatureEngineeringClient, FeatureLookup``.
"""

from __future__ import annotations

from lakestack.features.client import LINEAGE_TAG, FeatureEngineeringClient
from lakestack.features.lookup import FeatureLookup
from lakestack.features.spec import FEATURE_SPEC_FILE, FeatureSpec
from lakestack.features.table import FeatureTable
from lakestack.features.training import TrainingSet

__all__ = [
    "FEATURE_SPEC_FILE",
    "LINEAGE_TAG",
    "FeatureEngineeringClient",
    "FeatureLookup",
    "FeatureSpec",
    "FeatureTable",
    "TrainingSet",
]
