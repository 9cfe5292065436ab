"""Test procedures: what a test *does*, as data (pure core: data in, data out, no I/O).

``ratings`` (UUT ratings), ``model`` (the procedure models and JSON Schema; ``resolved``, what
benches execute; ``problems``, what is wrong; ``vocabulary``, what both share), ``text`` (the
PyBaMM-style text form; ``text_lines`` reads one line, ``text_format`` writes it back),
``resolve`` (C-rates, signs, safety; every problem named; ``variables`` substitutes a run's
values first), ``defaults`` (a default procedure per catalog test name, from ``safety_tests``
and ``performance_tests``), ``estimate`` (durations, DoE factors), ``battinfo`` (BattINFO
test-protocol export), ``outcomes`` (summaries and verdicts from results).
"""
