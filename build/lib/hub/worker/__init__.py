"""Background work: jobs as rows, a runner that claims them under a lease, schedules, progress events.

- ``handlers``: the contract for job handlers (plan, chunks, exactly once per item).
- ``registry``: job kinds and schedules a worker knows; ``default_registry()`` is the hub's.
- ``schedules``: periodic work, one job per period across all workers.
- ``store``: every state change of a job row, fenced by the worker's lease.
- ``runner``: claims, heartbeats, runs chunks, honours cancellation and shutdown.
- ``events``: typed progress events on the broker.
- ``process``: ``hub worker``, and the runner embedded in ``hub serve``.
"""
