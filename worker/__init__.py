"""Background processes: RQ workers (`python -m worker`) and `python -m worker.scheduler`.

Nothing in `app` imports this package; jobs are enqueued by their import path.
"""
