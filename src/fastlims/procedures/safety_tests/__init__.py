"""Default procedures of the safety, transport, abuse, mechanical, environmental and functional-safety
test names (UN 38.3 / IEC 62281, IEC 62660-2/-3, IEC 62619, UL 1642, UL 1973, UL 9540).

Values are summarised from the standards; the purchased standard text always governs. See
:mod:`fastlims.procedures.defaults` for the rules every default follows.

One module per family, in the order of the catalog's test codes: :mod:`.un38_3`,
:mod:`.electrical_abuse`, :mod:`.mechanical`, :mod:`.thermal` (with fire and propagation),
:mod:`.functional_safety` and :mod:`.unit_checks`; :mod:`.common` holds what several use.
"""

from __future__ import annotations

from fastlims.procedures.blocks import TestSpec
from fastlims.procedures.safety_tests import (
    electrical_abuse,
    functional_safety,
    mechanical,
    thermal,
    un38_3,
    unit_checks,
)

#: Every safety test's default, by catalog test code (the families' tables, in this order).
TESTS: dict[str, TestSpec] = {
    **un38_3.TESTS,
    **electrical_abuse.TESTS,
    **mechanical.TESTS,
    **thermal.TESTS,
    **functional_safety.TESTS,
    **unit_checks.TESTS,
}
