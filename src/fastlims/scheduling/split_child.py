"""Entry point of a child process of :mod:`.split` (kept apart so the package, which imports
:mod:`.split`, has not loaded this module when ``python -m`` runs it)."""

from fastlims.scheduling.split import _child_main

if __name__ == "__main__":
    _child_main()
