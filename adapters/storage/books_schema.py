"""The ledger's books beside its core tables, as migrations of component ``books``
(a component of its own, so its versions never collide with the core ledger's).

``ledger_lot``           FIFO lots of each current holding (JSON), rewritten with the holding
``ledger_realised``      one row per lot (or part of one) closed: the tax ledger's lines
``ledger_account_mode``  accounts held out of new risk (L3 SAFE, user pause) and why
``ledger_flag``          named switches of the system (stress-test mode, the §9 operating state)
``report``               stored weekly / monthly / quarterly reports (typed JSON bodies)
"""

from __future__ import annotations

from adapters.storage.migrations import Migration, register

COMPONENT = "books"

_TABLES = (
    "CREATE TABLE ledger_lot (account TEXT NOT NULL, contract_key TEXT NOT NULL, body TEXT NOT NULL,"
    " PRIMARY KEY (account, contract_key))",
    "CREATE TABLE ledger_realised (op_id TEXT NOT NULL, line INTEGER NOT NULL, account TEXT NOT NULL,"
    " contract_key TEXT NOT NULL, quarter TEXT NOT NULL, gain BIGINT NOT NULL, closed TEXT NOT NULL,"
    " body TEXT NOT NULL, PRIMARY KEY (op_id, line))",
    "CREATE TABLE ledger_account_mode (account TEXT PRIMARY KEY, mode TEXT NOT NULL, reason TEXT NOT NULL,"
    " since TEXT NOT NULL, release TEXT NOT NULL)",
    "CREATE TABLE ledger_flag (name TEXT PRIMARY KEY, value TEXT NOT NULL, reason TEXT NOT NULL, since TEXT NOT NULL)",
    "CREATE TABLE report (kind TEXT NOT NULL, period TEXT NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL,"
    " PRIMARY KEY (kind, period))",
    "CREATE INDEX ix_ledger_realised_account ON ledger_realised (account, quarter)",
)

V1 = Migration(
    component=COMPONENT,
    version=1,
    description="books: FIFO lots, realised P&L lines, account holds, system flags, stored reports",
    sqlite=_TABLES,
    postgresql=_TABLES,
)

register(V1)
