"""Evaluation of the compiled constitution against facts: preparing flat fact records, the
rule-language interpreter, the durable-rules runtime (``durable.py``, the only importer of
durable_rules), the reference matcher, and ``evaluate`` (facts -> Decision).

May import: engine.facts, engine.market, engine.records.
"""
