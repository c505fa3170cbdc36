"""The runtime: composition root, scheduling (live and replay) and the ``alluse`` CLI."""
