"""Backtest reports: figures read from a run's database, the HTML tearsheet and the
side-by-side comparison of two runs. Needs the ``reports`` extra (plotly, empyrical-reloaded)."""
