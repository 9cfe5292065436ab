"""What several families of safety tests use: a fixture test with its text per standard, the
"no fire, no explosion" observation and the operating-region criterion."""

from __future__ import annotations

from collections.abc import Callable

from fastlims.procedures.blocks import HOUR, fixture_test, observation
from fastlims.procedures.criteria import Criterion
from fastlims.procedures.model import Procedure
from fastlims.procedures.ratings import UutRatings


def fixture(
    code: str,
    title: str,
    action: str,
    texts: dict[str, tuple[float, str]],
    *,
    observe_s: int = HOUR,
    charged: bool = True,
) -> Callable[[UutRatings, str], Procedure]:
    """The build function of a fixture test: ``texts`` maps a standard (or ``"*"``, any other) to
    the action's duration in seconds and its description."""

    def build(r: UutRatings, std: str) -> Procedure:
        seconds, what = texts.get(std, texts["*"])
        return fixture_test(r, code, std, title, action, seconds, what, observe_s=observe_s, charged=charged)

    return build


def operating_region(text: str, observed: str) -> Callable[[UutRatings, str], Criterion]:
    """A criterion that the run stays within the UUT's rated voltage window and maximum temperature."""

    def make(r: UutRatings, std: str) -> Criterion:
        return Criterion(
            text=text,
            check="operating_region",
            limits=(r.min_voltage_V, r.max_voltage_V, r.max_temperature_C),
            observed=observed,
            source=std,
        )

    return make


NO_FIRE = observation("Pass: no fire, no explosion.")
