"""Find catalog combinations in whatever catalog the database holds (the shipped seed)."""

from __future__ import annotations

from dataclasses import dataclass

from fastlims.bootstrap import System
from fastlims.catalog import service as catalog


@dataclass(frozen=True)
class Combination:
    uut: str
    use_case: str
    standard: str
    test_name: str
    bench: str

    def body(self, **overrides: object) -> dict[str, object]:
        body: dict[str, object] = {
            "uut": self.uut,
            "use_case": self.use_case,
            "standard": self.standard,
            "test_name": self.test_name,
            "preferred_date": "2099-06-01T09:00:00",
            "bench": self.bench,
        }
        body.update(overrides)
        return body


def applicable(system: System, bench: str | None = None) -> Combination:
    with system.database.transaction() as session:
        for uut in catalog.get_uuts(session=session):
            for use_case in catalog.get_use_cases(session=session):
                for standard in catalog.get_standards(session=session):
                    for test in catalog.applicable_test_names(
                        session=session, uut=uut.code, use_case=use_case.name, standard=standard.code
                    ):
                        for candidate in ("Virtual", "Physical"):
                            if (bench is None or bench == candidate) and test.bench_kind.allows(candidate):
                                return Combination(uut.code, use_case.name, standard.code, test.code, candidate)
    raise AssertionError("the catalog has no applicable combination")


def not_applicable(system: System) -> Combination:
    """An active test under a standard it belongs to, for a UUT that standard does not cover."""
    with system.database.transaction() as session:
        all_tests = {t.code for t in catalog.applicable_test_names(session=session)}
        for uut in catalog.get_uuts(session=session):
            for use_case in catalog.get_use_cases(session=session):
                for standard in catalog.get_standards(session=session):
                    fitting = {
                        t.code
                        for t in catalog.applicable_test_names(
                            session=session, uut=uut.code, use_case=use_case.name, standard=standard.code
                        )
                    }
                    for code in sorted(all_tests - fitting):
                        test = catalog.get_test_name(session=session, code=code)
                        assert test is not None
                        bench = "Virtual" if test.bench_kind.allows("Virtual") else "Physical"
                        return Combination(uut.code, use_case.name, standard.code, code, bench)
    raise AssertionError("every test applies everywhere: the matrix filters nothing")
