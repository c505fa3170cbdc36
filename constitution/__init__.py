"""The constitution: versioned YAML policy, its schema, models, loader, validation and diff.

Lowest layer: imports nothing from engine/, adapters/ or scheduler/.
"""
