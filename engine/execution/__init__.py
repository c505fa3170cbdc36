"""Acting on a decision: the risk guard, the planner (orders and money operations), the ledger
and its views (FIFO lots, the quarter's books), the §9 states, the broker port, the executor
(write before act, exactly once) and the resume sequence.

May import: engine.facts, engine.market, engine.records.
"""
