"""First-run administrator and the documented demo accounts and sample requests."""

from __future__ import annotations

from datetime import timedelta

from fastlims.catalog import service as catalog
from fastlims.requests import service as requests_service
from fastlims.requests.schemas import TestRequestCreate
from fastlims.system import System
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
                    # Virtual benches run around the clock in the demo; physical ones need a lab's registry.
                    names = [n for n in names if n.bench_kind.allows("Virtual")]
                    if not names or samples >= 6:
                        continue
                    test = names[samples % len(names)]
                    bench = "Virtual"
                    requests_service.create(
                        session=session,
                        data=TestRequestCreate(
                            uut=uut.code,
                            use_case=use_case.name,
                            standard=standard.code,
                            test_name=test.code,
                            # As soon as possible: the demo shows the loop run through to Completed.
                            preferred_date=utcnow() + timedelta(seconds=5),
                            bench=bench,
                        ),
                        requester=requester,
                        zone=system.zone,
                    )
                    samples += 1


def enable_reference_digital_twin(system: System) -> str:
    """Register the reference DT as an MQTT partner and an SFTP partner, and run it in this
    process, so a demo request goes all the way through the hand-shake and the model upload."""
    from fastlims.intake import partners
    from fastlims.messaging import identities
    from fastlims.messaging.client import BrokerAddress
    from fastlims.peers.digital_twin import ReferenceDigitalTwin, ensure_credentials

    settings = system.settings
    credentials = ensure_credentials(settings.data_dir / "reference-dt")
    with system.database.transaction() as session:
        if not any(u.username == credentials.name for u in identities.get_all(session=session)):
            identities.add(
                session=session, username=credentials.name, role="partner", password=credentials.mqtt_password
            )
        if partners.get(session=session, name=credentials.name) is None:
            partners.create(session=session, name=credentials.name, key_text=credentials.public_key, source="demo")
    if settings.mqtt_url:
        address = BrokerAddress.from_url(settings.mqtt_url, settings.mqtt_ca_file)
    else:
        address = BrokerAddress(settings.mqtt_host, settings.mqtt_port)
    twin = ReferenceDigitalTwin(
        credentials, address, settings.sftp_host, settings.sftp_port, settings.mqtt_topic_prefix
    )
    # Subscribed before the LIMS starts relaying, so the demo's first requests are not missed:
    # right after the embedded broker, or first when the broker is external.
    position = 0 if settings.mqtt_url else 1
    system.services.insert(position, twin)
    return credentials.name
