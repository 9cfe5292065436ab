"""First-run administrator and the documented demo accounts and sample requests."""

from __future__ import annotations

from datetime import timedelta

from fastlims.bootstrap import System
from fastlims.catalog import service as catalog
from fastlims.requests import service as requests_service
from fastlims.requests.schemas import TestRequestCreate
from fastlims.timeutil import utcnow
from fastlims.users import service as users
from fastlims.users.security import generate_password


def ensure_admin(system: System) -> str | None:
    """On an empty user table create 'admin' and return its one-time password."""
    with system.database.transaction() as session:
        if users.count(session=session):
            return None
        password = generate_password()
        users.create(session=session, username="admin", role="admin", password=password, display_name="Administrator")
        return password


def load_demo(system: System, accounts: tuple[tuple[str, str, str], ...], password: str) -> None:
    """Idempotent: accounts that exist are left alone; sample requests only on an empty table."""
    with system.database.transaction() as session:
        for username, role, display_name in accounts:
            if users.get_by_username(session=session, username=username) is None:
                users.create(
                    session=session,
                    username=username,
                    role=role,
                    password=password,
                    display_name=display_name,
                )
        requester = users.get_by_username(session=session, username=accounts[0][0])
        assert requester is not None
        if requests_service.counts_by_status(session=session) and sum(
            requests_service.counts_by_status(session=session).values()
        ):
            return
        samples = 0
        for uut in catalog.get_uuts(session=session):
            for use_case in catalog.get_use_cases(session=session):
                for standard in catalog.get_standards(session=session):
                    names = catalog.applicable_test_names(
                        session=session, uut=uut.code, use_case=use_case.name, standard=standard.code
                    )
                    if not names or samples >= 6:
                        continue
                    test = names[samples % len(names)]
                    bench = "Virtual" if test.bench_kind.allows("Virtual") else "Physical"
                    requests_service.create(
                        session=session,
                        data=TestRequestCreate(
                            uut=uut.code,
                            use_case=use_case.name,
                            standard=standard.code,
                            test_name=test.code,
                            preferred_date=utcnow() + timedelta(days=1 + samples),
                            bench=bench,
                        ),
                        requester=requester,
                        zone=system.zone,
                    )
                    samples += 1
