"""The pure core of ALL-USE: no network, no database, no wall clock (``engine.clock`` is the
one place that reads it).

Rooms, lowest first (``tests/test_architecture.py`` enforces the edges):

* ``engine.facts``     - the input contract: the facts a decision is made from
* ``engine.records``   - what is recorded: decisions, audit records, the hash chain, replay
* ``engine.market``    - market data: calendar, snapshots, indicators, option model, quotes,
                         and facts built from a market snapshot
* ``engine.rules``     - evaluation: prepared facts, the durable-rules runtime, the reference
                         matcher, the interpreter of the rule language
* ``engine.execution`` - acting on a decision: risk guard, planner, ledger, broker port, executor
* ``engine.cycle``     - the one trading cycle paper, backtest and live share
"""
