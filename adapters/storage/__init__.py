"""Storage: SQLite by default, PostgreSQL by URL, through sqlmodel/SQLAlchemy (only here).

* ``database``   - URL resolution (``--db`` > ``ALLUSE_DB`` > per-user SQLite file), engine
  creation, serialised write transactions (SQLite ``BEGIN IMMEDIATE``, PostgreSQL table lock).
* ``migrations`` - versioned schema migrations, registered per component (audit, ledger, ...).
* ``audit_schema`` / ``audit_store`` - the decision log (docs/decision-log.md).
* ``errors``     - database failures translated to the project's Stop/Retry errors.
"""
