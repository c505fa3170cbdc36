"""What is recorded: the decision (the engine's output, its risk review included), audit
records and their drafts, masking, the hash-chain verifier, the decision-log port, replay of a
recorded decision, the ledger's hash chain (``ledger_link``), signed checkpoints
(``checkpoint``) and the review tables (``export``).

May import: nothing else in engine (constitution only).
"""
