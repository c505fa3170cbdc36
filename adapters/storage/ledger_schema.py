"""The ledger's tables, as versioned migrations of component ``ledger`` (same database as the
audit log). Amounts are integer cents.

``ledger_op``        every applied operation (op_id unique: the exactly-once key), append-only
``ledger_entry``     cash movements: one row per journal line; SUM(amount) over all rows is 0
``ledger_account``   accounts and sleeves (kind, base, high-water mark, forks, family, quarter)
``ledger_position``  current holdings per account
``ledger_order``     order intents (written before the submit) and their last broker status
``ledger_fill``      broker executions (execution_id unique)
``ledger_equity``    equity and high-water mark per account per cycle
``ledger_mode``      the system mode (active/safe/kill) and whether it is latched
``paper_venue``      the paper broker's own book (it is "the venue": saved independently):
                     positions, seeds and sequence (ledger 2: its orders and fills moved to)
``paper_venue_order`` the venue's orders by place in its book, rewritten when one changes
``paper_venue_fill``  the venue's fills by place, appended
"""

from __future__ import annotations

from adapters.storage.migrations import Migration, register

COMPONENT = "ledger"

_TABLES = (
    "CREATE TABLE ledger_op (op_id TEXT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE TABLE ledger_entry (op_id TEXT NOT NULL, line INTEGER NOT NULL, account TEXT NOT NULL, bucket TEXT NOT NULL,"
    " amount BIGINT NOT NULL, memo TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (op_id, line))",
    "CREATE TABLE ledger_account (id TEXT PRIMARY KEY, kind TEXT NOT NULL, opened TEXT NOT NULL, base_equity BIGINT NOT NULL,"
    " high_water_mark BIGINT NOT NULL, forks INTEGER NOT NULL, parent TEXT, family TEXT NOT NULL, status TEXT NOT NULL,"
    " quarter TEXT NOT NULL, quarter_start_equity BIGINT NOT NULL, reinvested_quarter TEXT NOT NULL)",
    "CREATE TABLE ledger_position (account TEXT NOT NULL, contract_key TEXT NOT NULL, contract TEXT NOT NULL,"
    " quantity INTEGER NOT NULL, avg_price DOUBLE PRECISION NOT NULL, purpose TEXT NOT NULL, opened TEXT NOT NULL,"
    " roll_debit DOUBLE PRECISION, PRIMARY KEY (account, contract_key))",
    "CREATE TABLE ledger_order (client_order_id TEXT PRIMARY KEY, decision_id TEXT NOT NULL, account TEXT NOT NULL,"
    " action_index INTEGER NOT NULL, action_kind TEXT NOT NULL, purpose TEXT NOT NULL, funding TEXT NOT NULL, why TEXT NOT NULL,"
    " request TEXT NOT NULL, state TEXT NOT NULL, filled INTEGER NOT NULL, avg_fill_price DOUBLE PRECISION, reason TEXT NOT NULL)",
    "CREATE TABLE ledger_fill (execution_id TEXT PRIMARY KEY, client_order_id TEXT NOT NULL, account TEXT NOT NULL,"
    " contract_key TEXT NOT NULL, side TEXT NOT NULL, quantity INTEGER NOT NULL, price DOUBLE PRECISION NOT NULL,"
    " commission DOUBLE PRECISION NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE ledger_equity (account TEXT NOT NULL, at TEXT NOT NULL, equity BIGINT NOT NULL,"
    " high_water_mark BIGINT NOT NULL, PRIMARY KEY (account, at))",
    "CREATE TABLE ledger_mode (id INTEGER PRIMARY KEY, mode TEXT NOT NULL, reason TEXT NOT NULL, latched INTEGER NOT NULL)",
    "CREATE TABLE paper_venue (id INTEGER PRIMARY KEY, book TEXT NOT NULL)",
    "CREATE INDEX ix_ledger_order_decision ON ledger_order (decision_id)",
)

V1 = Migration(
    component=COMPONENT,
    version=1,
    description="ledger: ops, cash entries, accounts, positions, orders, fills, equity, mode; paper venue",
    sqlite=_TABLES,
    postgresql=_TABLES,
)

_VENUE_ROWS = (
    "CREATE TABLE paper_venue_order (place INTEGER PRIMARY KEY, client_order_id TEXT NOT NULL UNIQUE,"
    " body TEXT NOT NULL)",
    "CREATE TABLE paper_venue_fill (place INTEGER PRIMARY KEY, body TEXT NOT NULL)",
)

# A save wrote the whole book as one row: O(history) per change (~1 MB after two years of a
# backtest). A book in that form is read as before and rewritten in this one at its next save.
V2 = Migration(
    component=COMPONENT,
    version=2,
    description="paper venue: orders and fills one row each, saved as they change",
    sqlite=_VENUE_ROWS,
    postgresql=_VENUE_ROWS,
)

register(V1, V2)
