"""The pure core: facts, rules runtime (the only importer of durable_rules), risk, decisions,
planning and ports. No network, no database, no wall clock (except engine/clock.py)."""
