"""The Data Processor (seed §6.1, Activity 1): once a request's upload set is complete, validate
it, then either move it into the request's simulation folder and make the request ModelReady, or
move it to ``quarantine/`` with ``reason.json`` and fail the request with every problem found.

Exactly once: a set is claimed in the database (its files' ``IntakeUploads`` rows move from
``waiting`` to ``processing`` in one compare-and-set) before anything is read or moved, and the
request only moves with ``change_status(expected=...)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import posixpath
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fastlims.db.engine import Database
from fastlims.intake import isolation, layout
from fastlims.intake.models import IntakeUpload, UploadState
from fastlims.intake.procedure_fit import port_needs, procedure_problems
from fastlims.intake.procedure_ports import PortNeeds
from fastlims.intake.schemas import ProblemOut, UploadOutcome
from fastlims.intake.storage import BlobStorage, StoredFile
from fastlims.intake.validation import Platform, Problem, ZipLimits, summary, validate_upload_set
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequest
from fastlims.requests.states import IllegalTransition, Status
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)

WAITING_STATES = (Status.Submitted, Status.ModelRequested)
ACTOR = "intake"
# A claim older than this is taken to belong to a process that died mid-way; the set is retried.
STALE_CLAIM = timedelta(minutes=15)
MAX_INTERCONNECTION_PEEK = 1024 * 1024


@dataclass(frozen=True)
class ModelReady:
    """What the pipeline gets when a request's models are in place (the seed's Activity 1 metadata)."""

    test_uuid: str
    request_number: str
    simulation_folder: str
    fmu_folder: str
    fmus: list[str]
    interconnection: str
    doe_input: str
    files: list[dict[str, object]] = field(default_factory=list)


ModelReadyHook = Callable[[ModelReady], None]


def upload_key(path: str, version: str) -> str:
    return hashlib.sha256(f"{path}\0{version}".encode()).hexdigest()


class _ClaimLost(Exception):
    pass


class DataProcessor:
    def __init__(
        self,
        *,
        database: Database,
        storage: BlobStorage,
        zone: ZoneInfo,
        limits: ZipLimits | None = None,
        platform: Platform | None = None,
        hooks: list[ModelReadyHook] | None = None,
        set_timeout: timedelta = timedelta(minutes=15),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.storage = storage
        self.zone = zone
        self.limits = limits or ZipLimits()
        self.platform = platform
        self.hooks: list[ModelReadyHook] = hooks if hooks is not None else []
        self.set_timeout = set_timeout
        self.clock = clock

    # --- the set of one request

    def pool_files(self, test_uuid: str) -> list[StoredFile]:
        """The model files in the pool that belong to ``test_uuid``, however they arrived."""
        return [
            f
            for f in self.storage.list(layout.POOL)
            if layout.in_subject_filter(f.key) and layout.correlate(f.key) == test_uuid
        ]

    def consider(self, test_uuid: str, *, trigger: str, source: str, partner: str | None = None) -> UploadOutcome:
        """Process the set of ``test_uuid`` if it is complete; quarantine it if no request waits for it."""
        files = self.pool_files(test_uuid)
        if not files:
            return UploadOutcome(
                path=trigger,
                outcome="gone",
                test_UUID=test_uuid,
                detail="no model files of this request are left in the pool",
            )
        with self.database.transaction() as session:
            try:
                request = requests.get_by_uuid(session=session, test_uuid=test_uuid)
            except requests.NotFound:
                request = None
            number = request.request_number if request else None
            status = Status(request.status) if request else None
            needs = port_needs(request) if request else PortNeeds()
        if request is None:
            return self.quarantine(
                files,
                test_uuid=test_uuid,
                trigger=trigger,
                source=source,
                reason=f"no test request has test_UUID {test_uuid}",
                fail_request=False,
            )
        assert status is not None
        refused, files = self._refuse_foreign(files, test_uuid=test_uuid, trigger=trigger, source=source)
        if refused is not None and (not files or layout.partner_of(trigger) in refused[1]):
            return refused[0]
        if status not in WAITING_STATES:
            return self.quarantine(
                files,
                test_uuid=test_uuid,
                trigger=trigger,
                source=source,
                reason=f"test request {number} is {status.name}; it is not waiting for models"
                " (only Submitted or ModelRequested requests take an upload)",
                fail_request=False,
            )
        state = self._set_status(files)
        if not state.complete and not (state.fmus and state.interconnections and self._waited_too_long(test_uuid)):
            return UploadOutcome(
                path=trigger,
                outcome="waiting",
                test_UUID=test_uuid,
                status=status.name,
                detail=f"upload set of {number} not complete yet: {len(files)} file(s) in the pool",
                missing=state.missing,
            )
        try:
            self._claim(files, test_uuid=test_uuid, source=source, partner=partner)
        except _ClaimLost:
            return UploadOutcome(
                path=trigger,
                outcome="duplicate",
                test_UUID=test_uuid,
                detail="this upload set is already being processed",
            )
        try:
            return self._process(files, test_uuid=test_uuid, trigger=trigger, source=source, needs=needs)
        except Exception:
            self._release(files)
            raise

    def _refuse_foreign(
        self, files: list[StoredFile], *, test_uuid: str, trigger: str, source: str
    ) -> tuple[tuple[UploadOutcome, set[str]] | None, list[StoredFile]]:
        """Quarantine, as ``unauthorized``, the files of partners that are not the request's own
        (:mod:`.isolation`); return that outcome (or None) and the files that remain."""
        uploaders = isolation.partners_in(files)
        if not uploaders:
            return None, files
        owner = isolation.authorised_partner(self.database, test_uuid, uploaders, layout.partner_of(trigger))
        foreign = isolation.foreign_files(files, owner)
        # Quarantine only the file whose upload just completed: the partner's other files may still
        # be in flight (its SFTP client writing them), and each is refused when its own upload
        # completes. None of them counts towards the request's own set meanwhile.
        excluded = {f.key for stored in foreign.values() for f in stored}
        foreign = {p: [f for f in theirs if f.key == trigger] for p, theirs in foreign.items()}
        foreign = {p: theirs for p, theirs in foreign.items() if theirs}
        outcome: UploadOutcome | None = None
        for partner, theirs in foreign.items():
            outcome = self.quarantine(
                theirs,
                test_uuid=test_uuid,
                trigger=trigger,
                source=source,
                reason=isolation.unauthorised_reason(partner, test_uuid),
                fail_request=False,
                kind=isolation.UNAUTHORIZED,
            )
            isolation.report_unauthorised(self.database, partner, test_uuid, theirs)
        remaining = [f for f in files if f.key not in excluded]
        if outcome is None:
            return None, remaining
        return (outcome, set(foreign)), remaining

    def _set_status(self, files: list[StoredFile]) -> layout.UploadSetStatus:
        keys = [f.key for f in files]
        state = layout.set_status(keys)
        if not (state.fmus and state.interconnections):
            return state
        interconnections = [f for f in files if layout.plain_name(posixpath.basename(f.key)) == layout.INTERCONNECTION]
        if len(interconnections) != 1 or interconnections[0].size > MAX_INTERCONNECTION_PEEK:
            return state  # complete by the seed's rule; the validation reports what is wrong
        named = layout.fmus_named_in(self.storage.get(interconnections[0].key))
        return layout.set_status(keys, named)

    def _waited_too_long(self, test_uuid: str) -> bool:
        """A set whose interconnection names an FMU that never comes is validated after
        ``set_timeout`` (and then fails, naming the missing FMU) instead of waiting forever."""
        with self.database.transaction() as session:
            first = session.scalar(
                select(func.min(IntakeUpload.received_at)).where(
                    IntakeUpload.test_uuid == test_uuid, IntakeUpload.outcome == UploadState.waiting.value
                )
            )
        return first is not None and self.clock() - first >= self.set_timeout

    def stale_sets(self) -> list[str]:
        """test_UUIDs whose waiting files are older than ``set_timeout``."""
        with self.database.transaction() as session:
            return list(
                session.scalars(
                    select(IntakeUpload.test_uuid)
                    .where(
                        IntakeUpload.outcome == UploadState.waiting.value,
                        IntakeUpload.test_uuid.is_not(None),
                        IntakeUpload.received_at <= self.clock() - self.set_timeout,
                    )
                    .distinct()
                )
            )

    # --- claim

    def _claim(self, files: list[StoredFile], *, test_uuid: str, source: str, partner: str | None) -> None:
        keys = [upload_key(f.key, f.version) for f in files]
        now = self.clock()
        try:
            with self.database.transaction() as session:
                present = set(session.scalars(select(IntakeUpload.upload_key).where(IntakeUpload.upload_key.in_(keys))))
                for stored, key in zip(files, keys, strict=True):
                    if key not in present:
                        session.add(_row(stored, key, test_uuid=test_uuid, source=source, partner=partner))
                session.flush()
                result = session.execute(
                    update(IntakeUpload)
                    .where(
                        IntakeUpload.upload_key.in_(keys),
                        or_(
                            IntakeUpload.outcome == UploadState.waiting.value,
                            and_(
                                IntakeUpload.outcome == UploadState.processing.value,
                                IntakeUpload.updated_at < now - STALE_CLAIM,
                            ),
                        ),
                    )
                    .values(outcome=UploadState.processing.value, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != len(keys):  # type: ignore[attr-defined]
                    raise _ClaimLost
        except IntegrityError:
            raise _ClaimLost from None

    def _release(self, files: list[StoredFile]) -> None:
        """Give a claimed set back (an unexpected error): the next event retries it."""
        keys = [upload_key(f.key, f.version) for f in files]
        try:
            with self.database.transaction() as session:
                session.execute(
                    update(IntakeUpload)
                    .where(IntakeUpload.upload_key.in_(keys), IntakeUpload.outcome == UploadState.processing.value)
                    .values(outcome=UploadState.waiting.value, updated_at=self.clock())
                    .execution_options(synchronize_session=False)
                )
        except Exception:  # noqa: BLE001 - the stale-claim timeout recovers it later
            log.exception("could not release a claimed upload set")

    # --- validate, then accept or quarantine

    def _process(
        self, files: list[StoredFile], *, test_uuid: str, trigger: str, source: str, needs: PortNeeds
    ) -> UploadOutcome:
        named: dict[str, StoredFile] = {}
        problems: list[Problem] = []
        for stored in files:
            name = layout.plain_name(posixpath.basename(stored.key))
            if name in named:
                problems.append(
                    Problem(
                        name, None, f"uploaded twice, as {named[name].key} and {stored.key}: keep one", "duplicate-name"
                    )
                )
                continue
            named[name] = stored
        started = self.clock()
        with self.storage.materialised([f.key for f in named.values()]) as local:
            problems += validate_upload_set(
                {name: local[stored.key] for name, stored in named.items()},
                limits=self.limits,
                platform=self.platform,
            )
            if not problems and layout.INTERCONNECTION in named:
                # A set whose files are sound must also fit the request's procedure (its port roles).
                problems += procedure_problems(local[named[layout.INTERCONNECTION].key], needs)
        log.info(
            "upload set checked",
            extra={
                "test_uuid": test_uuid,
                "files": len(files),
                "problems": len(problems),
                "seconds": round((self.clock() - started).total_seconds(), 3),
            },
        )
        if problems:
            return self.quarantine(
                files,
                test_uuid=test_uuid,
                trigger=trigger,
                source=source,
                reason=summary(problems),
                problems=problems,
                fail_request=True,
            )
        return self._accept(named, test_uuid=test_uuid, trigger=trigger, source=source)

    def _accept(self, named: dict[str, StoredFile], *, test_uuid: str, trigger: str, source: str) -> UploadOutcome:
        now = self.clock()
        folder = layout.simulation_folder(test_uuid, now.astimezone(self.zone).date())
        fmu_folder = layout.fmus_folder(folder)
        moved: list[dict[str, object]] = []
        for name, stored in sorted(named.items()):
            target = f"{fmu_folder}/{name}"
            self.storage.move(stored.key, target)
            moved.append({"name": name, "from": stored.key, "to": target, "size": stored.size})
        for name in layout.SIMULATION_SUBFOLDERS:
            self.storage.ensure_folder(layout.subfolder(folder, name))
        self._prune([stored.key for stored in named.values()], test_uuid)
        fmus = [str(m["to"]) for m in moved if str(m["name"]).lower().endswith(layout.FMU_SUFFIX)]
        interconnection = f"{fmu_folder}/{layout.INTERCONNECTION}"
        notice: ModelReady | None = None
        try:
            with self.database.transaction() as session:
                request = _locked_request(session, test_uuid)
                current = Status(request.status)
                if current is Status.Submitted:
                    requests.change_status(
                        session=session,
                        request=request,
                        target=Status.ModelRequested,
                        actor=ACTOR,
                        expected=Status.Submitted,
                        reason="models arrived before the Digital Twin's acknowledgement; the upload"
                        " counts as its acceptance",
                    )
                if request.dt_accepted_at is None:
                    request.dt_accepted_at = now
                requests.change_status(
                    session=session,
                    request=request,
                    target=Status.ModelReady,
                    actor=ACTOR,
                    expected=Status.ModelRequested,
                    reason=f"{len(fmus)} FMU(s) and {layout.INTERCONNECTION} validated and moved to {fmu_folder}/"
                    f" (via {source})",
                )
                request.simulation_folder = folder
                request.fmu_blob_path = fmu_folder + "/"
                self._mark(
                    session,
                    named.values(),
                    UploadState.accepted,
                    detail="accepted",
                    moved={str(m["from"]): str(m["to"]) for m in moved},
                )
                notice = ModelReady(
                    test_uuid=test_uuid,
                    request_number=request.request_number,
                    simulation_folder=folder,
                    fmu_folder=fmu_folder + "/",
                    fmus=fmus,
                    interconnection=interconnection,
                    doe_input=layout.subfolder(folder, layout.DOE_INPUT) + "/",
                    files=moved,
                )
                self.storage.put_json(
                    f"{folder}/{layout.INTAKE_FILE}",
                    json.dumps(
                        {
                            **asdict(notice),
                            "accepted_at": now.isoformat(),
                            "source": source,
                            "validation": {"problems": 0, "files": len(moved)},
                        },
                        indent=2,
                    ),
                )
        except IllegalTransition as exc:
            # The request moved on (cancelled, failed) while the set was being checked.
            files = [StoredFile(str(m["to"]), int(m["size"]), None, now) for m in moved]  # type: ignore[arg-type]
            return self.quarantine(
                [self.storage.head(f.key) or f for f in files],
                test_uuid=test_uuid,
                trigger=trigger,
                source=source,
                reason=f"the request changed state while its models were checked: {exc}",
                fail_request=False,
            )
        log.info("models ready", extra={"test_uuid": test_uuid, "folder": folder, "files": len(moved)})
        assert notice is not None
        for hook in list(self.hooks):
            try:
                hook(notice)
            except Exception:  # noqa: BLE001 - the request is ModelReady; the pipeline recovers on its own
                log.exception("a model-ready hook failed", extra={"test_uuid": test_uuid})
        return UploadOutcome(
            path=trigger,
            outcome="accepted",
            test_UUID=test_uuid,
            status=Status.ModelReady.name,
            detail=f"{len(moved)} file(s) moved to {fmu_folder}/",
        )

    def quarantine(
        self,
        files: list[StoredFile],
        *,
        test_uuid: str | None,
        trigger: str,
        source: str,
        reason: str,
        problems: list[Problem] | None = None,
        fail_request: bool,
        kind: str = "rejected",
    ) -> UploadOutcome:
        """Move ``files`` to ``quarantine/<test_UUID>/<when>/`` with ``reason.json``; fail the request
        when the files were its models. Nothing is deleted."""
        now = self.clock()
        target = layout.quarantine_folder(test_uuid, now, uuid.uuid4().hex[:8])
        moved: dict[str, str] = {}
        used: set[str] = set()
        for stored in files:
            name = posixpath.basename(stored.key)
            candidate, index = name, 1
            while candidate in used:
                index += 1
                candidate = f"{index}-{name}"
            used.add(candidate)
            destination = f"{target}/{candidate}"
            try:
                self.storage.move(stored.key, destination)
            except FileNotFoundError:
                continue  # moved meanwhile by another run (the pipeline re-checking, another process)
            moved[stored.key] = destination
        if files and not moved:
            return UploadOutcome(path=trigger, outcome="duplicate", test_UUID=test_uuid, detail="already handled")
        files = [f for f in files if f.key in moved]
        if kind != isolation.UNAUTHORIZED:  # another partner may still be uploading into that folder
            self._prune(list(moved), test_uuid)
        status_after: str | None = None
        request_number: str | None = None
        with self.database.transaction() as session:
            request = None
            if test_uuid is not None:
                try:
                    request = requests.get_by_uuid(session=session, test_uuid=test_uuid)
                except requests.NotFound:
                    request = None
            if request is not None:
                request_number = request.request_number
                current = Status(request.status)
                if fail_request and current not in (Status.Failed, Status.Cancelled, Status.Completed):
                    try:
                        requests.change_status(
                            session=session,
                            request=request,
                            target=Status.Failed,
                            actor=ACTOR,
                            reason=reason,
                            expected=current,
                        )
                    except IllegalTransition:
                        log.warning("request could not be failed", extra={"test_uuid": test_uuid})
                status_after = Status(request.status).name
            self._mark_paths(session, files, test_uuid=test_uuid, source=source, detail=reason, moved=moved)
        document = {
            "kind": kind,
            "test_UUID": test_uuid,
            "request_number": request_number,
            "reason": reason,
            "problems": [p.as_dict() for p in problems or []],
            "files": [{"from": f.key, "to": moved[f.key], "size": f.size, "version": f.version} for f in files],
            "source": source,
            "quarantined_at": now.isoformat(),
            "request_status": status_after,
        }
        self.storage.put_json(f"{target}/{layout.REASON_FILE}", json.dumps(document, indent=2))
        isolation.write_notices(self.storage, document, files)
        log.warning(
            "upload quarantined",
            extra={"test_uuid": test_uuid, "folder": target, "files": len(files), "problems": len(problems or [])},
        )
        return UploadOutcome(
            path=trigger,
            outcome=kind if kind == isolation.UNAUTHORIZED else "quarantined",
            test_UUID=test_uuid,
            status=status_after,
            detail=f"moved to {target}/: {reason}",
            problems=[ProblemOut(**p.as_dict()) for p in problems or []],  # type: ignore[arg-type]
        )

    # --- bookkeeping

    def _mark(self, session: Session, files: object, state: UploadState, *, detail: str, moved: dict[str, str]) -> None:
        for stored in files:  # type: ignore[attr-defined]
            session.execute(
                update(IntakeUpload)
                .where(
                    IntakeUpload.path == stored.key,
                    IntakeUpload.outcome.in_([UploadState.waiting.value, UploadState.processing.value]),
                )
                .values(outcome=state.value, detail=detail, moved_to=moved.get(stored.key), updated_at=self.clock())
                .execution_options(synchronize_session=False)
            )

    def _mark_paths(
        self,
        session: Session,
        files: list[StoredFile],
        *,
        test_uuid: str | None,
        source: str,
        detail: str,
        moved: dict[str, str],
    ) -> None:
        for stored in files:
            key = upload_key(stored.key, stored.version)
            if session.scalar(select(IntakeUpload.id).where(IntakeUpload.upload_key == key)) is None:
                session.add(_row(stored, key, test_uuid=test_uuid, source=source, partner=None))
        session.flush()
        self._mark(session, files, UploadState.quarantined, detail=detail[:4000], moved=moved)

    def _prune(self, keys: list[str], test_uuid: str | None) -> None:
        """Remove the request's now-empty ``<test_UUID>/`` folders from a local pool."""
        if test_uuid is None:
            return
        for key in keys:
            parent = posixpath.dirname(key)
            if posixpath.basename(parent).lower() == test_uuid and layout.in_pool(parent + "/"):
                path = self.storage.local_path(parent)
                if path is not None:
                    with contextlib.suppress(OSError):  # not empty, or already gone
                        path.rmdir()


def _row(stored: StoredFile, key: str, *, test_uuid: str | None, source: str, partner: str | None) -> IntakeUpload:
    return IntakeUpload(
        upload_key=key,
        path=stored.key,
        version=stored.version[:200],
        size=stored.size,
        test_uuid=test_uuid,
        source=source[:16],
        partner=partner,
        outcome=UploadState.waiting.value,
    )


def _locked_request(session: Session, test_uuid: str) -> TestRequest:
    query = select(TestRequest).where(TestRequest.test_uuid == test_uuid)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(of=TestRequest)
    request = session.scalar(query)
    if request is None:
        raise requests.NotFound(f"no test request has test_UUID {test_uuid!r}")
    return request
