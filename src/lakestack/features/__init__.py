"""Feature Engineering: feature tables, point-in-time training sets, models that look up their
features, and ``score_batch``.
"""
