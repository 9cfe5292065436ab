"""The runs capability: the scheduled runs of every request, whichever bench runs them.

It owns the ``PipelineRuns`` rows (``models``), a run's lifecycle as a pure state machine
(``lifecycle``), what a bench reports about a run (``service``: started, state changes, ended with
its outcome), the results store (``results``: the Parquet file, its CSV, the summary), and a
request's runs as the API and the pages show them (``queries``, ``schemas``, ``plots``, ``routes``).
``queues`` names where dispatch hands runs to benches.

The pipeline books and dispatches runs into it; the virtual bench and the physical bench gateway
report into it. It imports neither benches nor the pipeline.
"""
