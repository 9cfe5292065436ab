"""The simulation sandbox: what confines a child process that runs a partner's FMU (docs/security.md).

:mod:`.policy` says what a child may do, :mod:`.confine` applies it in the child, :mod:`.probe`
finds at start-up which mode works on this host; :mod:`.linux` and :mod:`.landlock` are the system
calls. The LIMS's configuration of it is :mod:`fastlims.benches.sandboxing`.
"""
