"""Model serving: ``lakestack serve`` endpoints and their inference tables (DESIGN §6, §7)."""
