"""Partner isolation in the intake: only the request's own Digital Twin partner supplies its models.

Who uploaded a file follows from where it lies, not from the event that announced it (a file seen
by the folder watcher or the start-up scan counts the same as over SFTP):
``pool/<partner>/…`` is that partner's (its SFTP folder; its model_uploader's HTTP uploads land
there too); ``pool/<test_UUID>/…`` and UUID-named files directly in ``pool/`` are the lab's own drops
(only the lab, or whoever holds the storage's credentials, can write there), which count for any
request.

A request's partner is the one :mod:`fastlims.requests.routing` gives it; a request without one
takes the first active partner whose upload arrives while it waits for models (the upload counts
as its acceptance). Files of any other partner are quarantined as ``unauthorized``, naming that
partner, reported on ``…/errors`` and on that partner's ``…/partners/<partner>/errors``; the
request is not touched.

A partner reads why its upload was refused in ``/<test_UUID>.rejected.json`` in its own folder
(every problem, as in the lab's ``reason.json``, without the lab's paths).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from typing import Any

from fastlims.db.engine import Database
from fastlims.intake import layout
from fastlims.intake import partners as dt_partners
from fastlims.intake.storage import BlobStorage, StoredFile
from fastlims.messaging import outbox
from fastlims.messaging.schemas import ErrorMessage, seed_time
from fastlims.requests import routing
from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.timeutil import utcnow

UNAUTHORIZED = "unauthorized"
NOTICE_SUFFIX = ".rejected.json"
_WAITING = (Status.Submitted, Status.ModelRequested)


def partners_in(files: Iterable[StoredFile]) -> set[str]:
    return {p for p in (layout.partner_of(f.key) for f in files) if p is not None}


def authorised_partner(database: Database, test_uuid: str, uploaders: set[str], first: str | None) -> str | None:
    """The request's partner; when it has none and waits for models, the first of ``uploaders``
    (``first``, the partner whose upload triggered this, before the others) that is an active
    partner becomes it. None when nobody is (the request is then no partner's yet)."""
    with database.transaction() as session:
        request = requests.get_by_uuid(session=session, test_uuid=test_uuid)
        owner = routing.resolve(session=session, request=request)
        if owner is not None or Status(request.status) not in _WAITING:
            return owner
        ordered = ([first] if first in uploaders else []) + sorted(uploaders - {first})
        for partner in ordered:
            found = dt_partners.get(session=session, name=partner)
            if (
                found is not None
                and found.is_active
                and routing.claim(session=session, request=request, partner=partner)
            ):
                return partner
        return None


def foreign_files(files: list[StoredFile], owner: str | None) -> dict[str, list[StoredFile]]:
    """The files of partners other than ``owner``, per partner (none when the request has no partner)."""
    if owner is None:
        return {}
    found: dict[str, list[StoredFile]] = {}
    for stored in files:
        partner = layout.partner_of(stored.key)
        if partner is not None and partner != owner:
            found.setdefault(partner, []).append(stored)
    return found


def unauthorised_reason(partner: str, test_uuid: str) -> str:
    return (
        f"{UNAUTHORIZED}: partner {partner} is not the Digital Twin partner of test request {test_uuid}"
        " (another partner serves it); its upload does not count and the request is not affected"
    )


def report_unauthorised(database: Database, partner: str, test_uuid: str, files: list[StoredFile]) -> None:
    """Tell the lab (``…/errors``) and the partner (``…/partners/<partner>/errors``), through the
    outbox: the report goes out once the broker is reachable."""
    names = ", ".join(posixpath.basename(f.key) for f in files)
    error = ErrorMessage(
        topic=f"pool/{partner}/{test_uuid}",
        reason=f"{unauthorised_reason(partner, test_uuid)}; quarantined: {names}",
        client=partner,
        at=seed_time(utcnow()),
    )
    with database.transaction() as session:
        outbox.enqueue(session, "errors", error, qos=1)
        outbox.enqueue(session, f"partners/{partner}/errors", error, qos=1)


def write_notices(storage: BlobStorage, document: dict[str, Any], files: list[StoredFile]) -> None:
    """Each partner whose files were quarantined gets the reasons in its own folder."""
    owner = document.get("test_UUID") or layout.UNMATCHED
    for partner in sorted(partners_in(files)):
        notice = {
            "test_UUID": document.get("test_UUID"),
            "kind": document.get("kind"),
            "reason": document.get("reason"),
            "problems": document.get("problems", []),
            "files": [posixpath.basename(f.key) for f in files if layout.partner_of(f.key) == partner],
            "quarantined_at": document.get("quarantined_at"),
            "request_status": document.get("request_status") if document.get("kind") != UNAUTHORIZED else None,
        }
        storage.put_json(f"{layout.POOL}/{partner}/{owner}{NOTICE_SUFFIX}", json.dumps(notice, indent=2))
