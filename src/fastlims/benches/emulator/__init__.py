"""The bench emulator: a physical bench without the hardware. It runs a run file's procedure with
the reference executor (:mod:`fastlims.procedures.interpreter`) against an equivalent-circuit
model of the UUT built from its ratings, behind the same driver interface a real cycler's driver
implements (:mod:`.driver`)."""
