"""A request's runs as a battery engineer reads them: how each ran and ended, its factors and
outcomes (``service``, ``schemas``), and a voltage/current plot drawn from its results
(``plots``).

Self-contained so that it moves whole into the ``fastlims.runs`` capability once scheduled runs
live there: it reads the pipeline's ``ScheduledRun`` rows and the files a bench wrote, nothing else
of the benches but the results format and the file names.
"""
