"""The dashboard and JSON API (``alluse serve``): read-only pages and ``/api`` over one
database, with health, readiness and Prometheus metrics. Needs the ``web`` extra (FastAPI,
Jinja2, uvicorn, prometheus-client). Reads without the writer's lease (``ReadOnlyDatabase``)."""
