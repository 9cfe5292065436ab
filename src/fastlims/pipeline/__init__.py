"""The durable pipeline (seed §6.1): one DBOS workflow per request, validate → DoE → schedule →
dispatch, surviving crashes.

- File Monitor: the intake's upload events; its Data Processor calls the model-ready hook, which
  starts the request's workflow (:meth:`engine.PipelineEngine.on_model_ready`).
- Simulation Orchestrator: :func:`workflow.request_pipeline` (a DBOS workflow).
- Activities: :mod:`steps` (Data Processor, DoE runner, Schedule runner, Dispatch), each a DBOS
  step exchanging only small metadata; payloads stay in storage.
- Engine: :mod:`engine` (DBOS configuration from settings, executor heartbeats, recovery of
  workflows whose process is gone), :mod:`service` (the background service, the worker).

Importing this package loads nothing heavy; DBOS, OR-Tools and FMPy load with the modules
that need them.
"""
