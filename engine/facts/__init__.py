"""The facts a decision is made from: the typed model, loading a facts file, its JSON Schema.

May import: nothing else in engine (constitution only).
"""
