"""The trading cycle paper, backtest and live share: market snapshot -> ledger -> facts ->
evaluate -> risk -> record -> plan -> execute -> report; quiet ticks; opening a paper portfolio.

May import: engine.facts, engine.market, engine.records, engine.rules, engine.execution.
"""
