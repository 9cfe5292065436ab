"""First-run administrator and the documented demo accounts and sample requests."""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from datetime import timedelta

from fastlims.config import Settings
from fastlims.messaging.variables import Variables
from fastlims.requests import service as requests_service
from fastlims.requests.schemas import TestRequestCreate
from fastlims.system import System
from fastlims.timeutil import utcnow
from fastlims.users import service as users
from fastlims.users.security import generate_password

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    """True when ``host`` (a name or address) resolves to loopback addresses only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def non_loopback(http_host: str, settings: Settings) -> str | None:
    """The first listening address of the demo that other machines could reach (the web server,
    SFTP, the embedded broker), described with its setting, or None when all are loopback."""
    listening = [("web", "FASTLIMS_HTTP_HOST / --host", http_host)]
    if settings.sftp_enabled:
        listening.append(("SFTP", "FASTLIMS_SFTP_HOST", settings.sftp_host))
    if settings.mqtt_url is None:
        listening.append(("MQTT broker", "FASTLIMS_MQTT_HOST", settings.mqtt_host))
    for service, setting, host in listening:
        if not _is_loopback(host):
            return f"{host!r} ({service}, {setting})"
    return None


def disable_demo_accounts(system: System, names: tuple[str, ...]) -> list[str]:
    """Disable the demo accounts that are still active (the system started without ``--demo``):
    their password is published. Returns the names disabled now."""
    disabled = []
    with system.database.transaction() as session:
        for name in names:
            user = users.get_by_username(session=session, username=name)
            if user is not None and user.is_active:
                users.set_active(session=session, username=name, active=False)
                disabled.append(name)
    if disabled:
        log.warning("demo accounts disabled: started without --demo", extra={"accounts": disabled})
    return disabled


def ensure_admin(system: System) -> str | None:
    """On an empty user table create 'admin' and return its one-time password."""
    with system.database.transaction() as session:
        if users.count(session=session):
            return None
        password = generate_password()
        users.create(session=session, username="admin", role="admin", password=password, display_name="Administrator")
        return password


@dataclass(frozen=True)
class DemoRequest:
    """One sample request: what it asks for and what a battery engineer reads in its results."""

    uut: str
    use_case: str
    standard: str
    test_name: str
    shows: str
    procedure: tuple[str, ...] = ()  # the requester's own procedure (text lines); empty: the default
    bench: str = "Virtual"  # or "Physical": its runs go to the emulated benches emu-1 and emu-2
    expected: str = "Completed"  # how the request ends when the demo works (``fastlims demo`` checks it)
    expected_reason: str = ""  # for an expected failure: what its reason says


# Each runs the test's procedure in closed loop on the models the reference Digital Twin chooses
# for its UUT (peers/model_registry.py), and simulates in about a second.
DEMO_REQUESTS: tuple[DemoRequest, ...] = (
    DemoRequest(
        "Gen3b - Cell", "Automotive", "IEC62660", "PERF-CAPACITY-RT",
        "IEC 62660-1 capacity: CC-CV charge (the CV current tapers to C/20), discharge to 2.5 V; the DoE runs it "
        "at C/3 and 1C: the capacity of the 5 Ah model, a little less at 1C",
    ),
    DemoRequest(
        "Gen4 - Cell", "Automotive", "IEC62660", "PERF-POWER-IR",
        "power and internal resistance: 10 s discharge and charge pulses at 80, 50 and 20 % SOC; the DCIR is the "
        "10 Ah model's R0 (7.5 mOhm); the DoE runs it at 0 and 40 degC",
    ),
    DemoRequest(
        "Gen3b - Module", "Automotive", "ISO12405.4", "PERF-CAPACITY-RT",
        "a 12s4p module (30-50.4 V, 20 Ah): the same capacity test on a module model, at C/3 and 1C",
    ),
    DemoRequest(
        "Gen3b - Cell", "Automotive", "IEC62660", "PERF-ENERGY-EFF",
        "the requester's own procedure charges for a fixed hour with no voltage cut-off: the run trips the "
        "UUT's maximum-voltage safety limit and the request fails saying so (limit, value, test time)",
        procedure=(
            "# name: quick round trip (hand-written: the charge has no voltage cut-off)",
            "Set ambient to 25 degC and rest for 10 minutes",
            "Charge at 1C for 1 hour",
            "Rest for 10 minutes",
            "Discharge at 1C until 2.5 V",
        ),
        expected="Failed",
        expected_reason="safety limit max_voltage_V",
    ),
    DemoRequest(
        "Gen3b - Cell", "Automotive", "IEC62660", "PERF-CAPACITY-RT",
        "the same capacity test on a physical bench (the emulators emu-1 and emu-2, each its own process on "
        "MQTT): the gateway stores every sample once and computes the same outcomes from the measurement",
        bench="Physical",
    ),
    DemoRequest(
        "Gen3b - Module", "Automotive", "ISO12405.4", "PERF-CAPACITY-RT",
        "the module's capacity test on the emulated physical benches (rated 50 A, 0-60 V)",
        bench="Physical",
    ),
)  # fmt: skip


def load_demo(
    system: System, accounts: tuple[tuple[str, str, str], ...], password: str
) -> list[tuple[str, str, DemoRequest]]:
    """Idempotent: accounts that exist are left alone; sample requests only on an empty table.
    Returns the requests submitted now: number, test_UUID and the sample (none on a second run)."""
    with system.database.transaction() as session:
        for username, role, display_name in accounts:
            if users.get_by_username(session=session, username=username) is None:
                users.create(
                    session=session,
                    username=username,
                    role=role,
                    password=password,
                    display_name=display_name,
                    demo=True,
                )
            else:
                users.set_active(session=session, username=username, active=True)  # disabled by a run without --demo
        requester = users.get_by_username(session=session, username=accounts[0][0])
        assert requester is not None
        if sum(requests_service.counts_by_status(session=session).values()):
            return []
    submitted: list[tuple[str, str, DemoRequest]] = []
    for sample in DEMO_REQUESTS:
        # One transaction each: a sample the catalog no longer allows (an edited catalog) is skipped, named.
        try:
            with system.database.transaction() as session:
                requester = users.get_by_username(session=session, username=accounts[0][0])
                assert requester is not None
                created = requests_service.create(
                    session=session,
                    data=TestRequestCreate(
                        uut=sample.uut,
                        use_case=sample.use_case,
                        standard=sample.standard,
                        test_name=sample.test_name,
                        # As soon as possible: the demo shows the loop run through to its end.
                        preferred_date=utcnow() + timedelta(seconds=5),
                        bench=sample.bench,
                        variables=Variables(test_procedures=list(sample.procedure)) if sample.procedure else None,
                    ),
                    requester=requester,
                    zone=system.zone,
                )
                submitted.append((created.request_number, created.test_uuid, sample))
        except requests_service.RequestInvalid as exc:
            log.warning("demo request skipped: %s %s: %s", sample.uut, sample.test_name, exc)
    return submitted


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
