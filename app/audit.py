"""The auditor: every invariant the service promises, checked against the database and storage.

`flask --app wsgi audit` prints one line per check and exits 1 if any is breached; tests call
`run_audit()` after every fault they inject. It only reads (one read-only pass; nothing is
repaired), so it is safe to run against production at any time.

Things in flight are not breaches: a claim may be a little past its deadline until the next
sweep, a message waits for its next attempt, an upload is a file before its row commits. Each
such check allows a grace period (AUDIT_GRACE_SECONDS, default 600) beyond its own schedule.
"""
from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

from flask import current_app
from PIL import Image
from sqlalchemy import and_, case, func, select

from app.beneficiaries.models import Beneficiary
from app.cases.models import Alert, Person, Task
from app.claims.models import HOLDING, Claim, Proof
from app.extensions import db
from app.ledger import log as ledger_log
from app.ledger import merkle, note
from app.ledger.entries import canonical
from app.ledger.models import LedgerCheckpoint, LedgerEntry
from app.media.storage import get_storage
from app.notifications.models import OutboxMessage
from app.types import utcnow
from app.uow import reset
from app.wishes.models import Wish

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 10  # failures listed per check; the count says how many there were in all
DEFAULT_GRACE_SECONDS = 600
# Photo metadata that must never be in a served image.
_META_INFO_KEYS = ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "photoshop",
                   "iptc")


@dataclass
class CheckResult:
    name: str
    summary: str = ""
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class AuditReport:
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list[str]:
        return [f"{r.name}: {f}" for r in self.results for f in r.failures]

    def text(self) -> str:
        failed = sum(not r.ok for r in self.results)
        lines = [f"audit: {len(self.results)} checks, {failed} failed"]
        for r in self.results:
            lines.append(f"  {'ok  ' if r.ok else 'FAIL'}  {r.name:<34} {r.summary}"
                         f" ({r.seconds:.2f}s)")
            shown = r.failures[:MAX_EXAMPLES]
            lines += [f"        - {f}" for f in shown]
            if len(r.failures) > len(shown):
                lines.append(f"        … and {len(r.failures) - len(shown)} more")
        lines.append("audit: PASSED" if self.ok else "audit: FAILED")
        return "\n".join(lines)


Check = Callable[[CheckResult], None]
CHECKS: list[tuple[str, Check]] = []


def check(name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS.append((name, fn))
        return fn
    return register


def _grace() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("AUDIT_GRACE_SECONDS",
                                                        DEFAULT_GRACE_SECONDS)))


def _count(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# ---- claims and wishes ---------------------------------------------------------------------------

@check("one_holding_claim_per_wish")
def _one_holding_claim(result: CheckResult) -> None:
    rows = db.session.execute(
        select(Claim.wish_id, func.count()).where(Claim.status.in_(HOLDING))
        .group_by(Claim.wish_id).having(func.count() > 1)).all()
    held = db.session.execute(select(func.count()).where(Claim.status.in_(HOLDING))).scalar_one()
    result.summary = f"{held} holding claims"
    result.failures += [f"wish {w} has {n} holding claims" for w, n in rows]


# Which claim a wish in each state must have (exactly one), and which it must not have.
_WISH_NEEDS = {"claimed": "active", "delivered": "delivered", "fulfilled": "confirmed"}


@check("wish_and_claim_states_agree")
def _states_agree(result: CheckResult) -> None:
    counts = (select(Wish.id, Wish.status,
                     _count(Claim.status == "active").label("active"),
                     _count(Claim.status == "delivered").label("delivered"),
                     _count(Claim.status == "confirmed").label("confirmed"))
              .select_from(Wish).outerjoin(Claim, Claim.wish_id == Wish.id)
              .group_by(Wish.id, Wish.status))
    checked = 0
    for wish_id, status, *numbers in db.session.execute(counts):
        checked += 1
        have = dict(zip(("active", "delivered", "confirmed"), (int(n) for n in numbers)))
        need = _WISH_NEEDS.get(status)
        for claim_status, n in have.items():
            expected = 1 if claim_status == need else 0
            if n != expected:
                result.failures.append(f"wish {wish_id} is {status} with {n} {claim_status} claims"
                                       f" (expected {expected})")
    result.summary = f"{checked} wishes"


@check("claim_deadlines_kept")
def _deadlines(result: CheckResult) -> None:
    late = utcnow() - timedelta(seconds=int(current_app.config["SLA_CHECK_SECONDS"])) - _grace()
    rows = db.session.execute(select(Claim.id, Claim.due_at).where(
        Claim.status == "active", Claim.due_at < late).limit(100)).all()
    result.summary = "no active claim far past its deadline" if not rows else ""
    result.failures += [f"claim {c} still active, due {due.isoformat()}" for c, due in rows]


# ---- the ledger ----------------------------------------------------------------------------------

@check("confirmed_claim_has_one_ledger_entry")
def _claims_in_ledger(result: CheckResult) -> None:
    missing = db.session.execute(
        select(Claim.id).outerjoin(LedgerEntry, and_(LedgerEntry.source_type == "claim",
                                                     LedgerEntry.source_id == Claim.id))
        .where(Claim.status == "confirmed", LedgerEntry.index.is_(None)).limit(100)).scalars()
    result.failures += [f"confirmed claim {c} has no ledger entry" for c in missing]
    stray = db.session.execute(
        select(LedgerEntry.index, LedgerEntry.source_id)
        .outerjoin(Claim, Claim.id == LedgerEntry.source_id)
        .where(LedgerEntry.source_type == "claim",
               (Claim.id.is_(None)) | (Claim.status != "confirmed")).limit(100)).all()
    result.failures += [f"ledger entry {i} names claim {c}, which is not confirmed"
                        for i, c in stray]
    confirmed = db.session.execute(
        select(func.count()).where(Claim.status == "confirmed")).scalar_one()
    result.summary = f"{confirmed} confirmed claims"


@check("ledger_verifies_against_checkpoint")
def _ledger(result: CheckResult) -> None:
    size = ledger_log.size()
    hashes: list[bytes] = []
    expected = 0
    rows = db.session.execute(select(LedgerEntry.index, LedgerEntry.leaf, LedgerEntry.leaf_hash)
                              .order_by(LedgerEntry.index)
                              .execution_options(yield_per=5000))
    for index, leaf, leaf_hash in rows:
        leaf = bytes(leaf)
        if index != expected:
            result.failures.append(f"ledger index {expected} is missing (next is {index})")
            return
        expected += 1
        digest = merkle.leaf_hash(leaf)
        if digest != bytes(leaf_hash):
            result.failures.append(f"entry {index}: stored leaf hash does not match its bytes")
        try:
            if canonical(json.loads(leaf)) != leaf:
                result.failures.append(f"entry {index}: bytes are not canonical JSON")
        except ValueError:
            result.failures.append(f"entry {index}: bytes are not JSON")
        hashes.append(digest)
    if size and merkle.root(hashes) != ledger_log.root(size):
        result.failures.append(f"stored interior nodes give another root at size {size}")
    latest = db.session.execute(select(LedgerCheckpoint)
                                .order_by(LedgerCheckpoint.size.desc()).limit(1)).scalar()
    if latest is None:
        result.summary = f"{size} entries, no checkpoint signed yet"
        return
    _, vkey = ledger_log.verifier_key()
    try:
        origin, cp_size, cp_root = note.parse_checkpoint(note.verify_note(latest.note, vkey))
    except note.NoteError as exc:
        result.failures.append(f"latest checkpoint does not verify with the log's key: {exc}")
        return
    if cp_size > size:
        result.failures.append(f"checkpoint at {cp_size} but only {size} entries")
    elif cp_size and merkle.root(hashes[:cp_size]) != cp_root:
        result.failures.append(f"the first {cp_size} entries do not hash to the signed root")
    result.summary = f"{size} entries, checkpoint {cp_size} ({origin})"


# ---- the fund ------------------------------------------------------------------------------------

@check("fund_books_balance")
def _fund(result: CheckResult) -> None:
    try:
        from app.fund import audit as fund_audit
    except ImportError:  # the fund is not part of this build
        result.summary = "no fund in this build"
        return
    problems = fund_audit.problems()
    result.failures += problems
    result.summary = "books balance, fund not negative" if not problems else ""


# ---- finding people ------------------------------------------------------------------------------

@check("open_alert_has_open_task")
def _alert_tasks(result: CheckResult) -> None:
    rows = db.session.execute(
        select(Alert.id).outerjoin(Task, and_(Task.alert_id == Alert.id, Task.status == "open"))
        .where(Alert.status == "open", Task.id.is_(None)).limit(100)).scalars()
    result.failures += [f"alert {a} is open with no open visit task" for a in rows]
    opened = db.session.execute(select(func.count()).where(Alert.status == "open")).scalar_one()
    result.summary = f"{opened} open alerts"


@check("one_open_alert_per_person")
def _one_alert(result: CheckResult) -> None:
    rows = db.session.execute(
        select(Alert.person_id, func.count()).where(Alert.status == "open")
        .group_by(Alert.person_id).having(func.count() > 1).limit(100)).all()
    result.failures += [f"person {p} has {n} open alerts" for p, n in rows]


@check("overdue_tasks_escalated")
def _tasks_escalated(result: CheckResult) -> None:
    late = utcnow() - timedelta(
        seconds=int(current_app.config["CASES_ESCALATION_SECONDS"])) - _grace()
    rows = db.session.execute(select(Task.id, Task.due_at).where(
        Task.status == "open", Task.due_at < late, Task.escalated_at.is_(None)).limit(100)).all()
    result.failures += [f"task {t} open past its due time {due.isoformat()}, not escalated"
                        for t, due in rows]
    result.summary = "every overdue task escalated" if not rows else ""


@check("task_deadlines_on_known_calendar")
def _task_calendar(result: CheckResult) -> None:
    """Open tasks due in a year the working calendar does not know were counted Monday to
    Friday (app.cases.tasks.due_after): the operator adds that year's notice."""
    from app.cases.tasks import working_calendar
    from app.workdays import CHINA

    calendar = working_calendar()
    dues = db.session.execute(select(Task.id, Task.due_at).where(Task.status == "open")
                              .order_by(Task.due_at.desc()).limit(1000)).all()
    unknown = sorted({due.astimezone(CHINA).year for _, due in dues
                      if not calendar.knows(due.astimezone(CHINA).year)})
    for year in unknown:
        ids = [t for t, due in dues if due.astimezone(CHINA).year == year]
        result.failures.append(
            f"{len(ids)} open task(s) due in {year} (e.g. {ids[0]}) were counted Monday to "
            f"Friday: the working calendar lacks {year}; add the State Council's notice to "
            f"WORKING_CALENDAR_FILE (or upgrade chinesecalendar)")
    result.summary = f"{len(dues)} open tasks" if not unknown else ""


@check("enrolled_tasks_recorded")
def _enrolled(result: CheckResult) -> None:
    """A done task with outcome `enrolled` left the person with an assistance type, and the
    beneficiary it names (every enrolment since migration 0012 names one: the person's, or the
    one recorded with the visit) with it too, under the person's ID hash so signals find them.
    Tasks enrolled before then name a beneficiary only when the person already had one."""
    enrolled = and_(Task.status == "done", Task.outcome == "enrolled")
    rows = db.session.execute(
        select(Task.id, Person.id).join(Person, Person.id == Task.person_id)
        .where(enrolled, Person.assistance_type.is_(None)).limit(100)).all()
    result.failures += [f"task {t} enrolled, but person {p} has no assistance type"
                        for t, p in rows]
    rows = db.session.execute(
        select(Task.id, Beneficiary.id, Beneficiary.assistance_type,
               Beneficiary.id_hash == Person.id_hash)
        .join(Beneficiary, Beneficiary.id == Task.beneficiary_id)
        .join(Person, Person.id == Task.person_id)
        .where(enrolled, Beneficiary.erased.is_(False),
               (Beneficiary.assistance_type.is_(None))
               | (Beneficiary.id_hash.is_(None)) | (Beneficiary.id_hash != Person.id_hash))
        .limit(100)).all()
    for task_id, ben_id, assistance, same_hash in rows:
        if assistance is None:
            result.failures.append(f"task {task_id} enrolled, but beneficiary {ben_id} has no "
                                   "assistance type")
        if not same_hash:
            result.failures.append(f"beneficiary {ben_id} of enrolled task {task_id}: its ID "
                                   "hash is not the person's, signals will not find them")
    total, linked = db.session.execute(
        select(func.count(), func.count(Task.beneficiary_id)).where(enrolled)).one()
    result.summary = f"{total} enrolled, {linked} with their beneficiary"


# ---- background work -----------------------------------------------------------------------------

@check("outbox_not_stuck")
def _outbox(result: CheckResult) -> None:
    cutoff = utcnow() - _grace()
    rows = db.session.execute(select(OutboxMessage.id, OutboxMessage.next_attempt_at).where(
        OutboxMessage.status == "pending", OutboxMessage.next_attempt_at < cutoff)
        .limit(100)).all()
    pending = db.session.execute(select(func.count()).where(
        OutboxMessage.status == "pending")).scalar_one()
    result.summary = f"{pending} pending"
    result.failures += [f"message {i} pending since its attempt at {at.isoformat()}"
                        for i, at in rows]


@check("proofs_not_stuck")
def _proofs_stuck(result: CheckResult) -> None:
    cutoff = utcnow() - _grace()
    rows = db.session.execute(select(Proof.id).where(
        Proof.status == "processing", Proof.created_at < cutoff).limit(100)).scalars()
    result.failures += [f"proof {p} still processing" for p in rows]
    result.summary = "none processing past the grace period" if not result.failures else ""


@check("photos_owned_and_clean")
def _photos(result: CheckResult) -> None:
    owned: dict[str, str] = {}
    for proof_id, status, upload, image, thumb in db.session.execute(
            select(Proof.id, Proof.status, Proof.upload_key, Proof.image_key, Proof.thumb_key)):
        for key, served in ((upload, False), (image, True), (thumb, True)):
            if key:
                owned[key] = "served" if served else "upload"
    storage = get_storage()
    stored = dict(storage.keys()) if hasattr(storage, "keys") else {}
    young = time.time() - _grace().total_seconds()
    for key, mtime in stored.items():
        if key not in owned and mtime < young:
            result.failures.append(f"stored file {key} belongs to no proof")
    served = 0
    for key, kind in owned.items():
        if key not in stored:
            result.failures.append(f"{kind} file {key} is missing from storage")
        elif kind == "served":
            served += 1
            problem = _metadata_problem(storage.get(key))
            if problem:
                result.failures.append(f"{key}: {problem}")
    result.summary = f"{len(stored)} files, {served} served images checked"


def _metadata_problem(data: bytes) -> str | None:
    """Why a served image is not clean, or None: no EXIF/GPS, XMP, ICC, comments, trailing data."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            found = [k for k in _META_INFO_KEYS if im.info.get(k)]
            if len(im.getexif()):
                found.append("exif tags")
            if im.format == "JPEG":
                found += [marker for marker, _ in getattr(im, "applist", [])
                          if marker not in ("APP0",)]
            im.verify()
    except Exception as exc:  # noqa: BLE001 - any decoding failure is itself the finding
        return f"not a readable image ({type(exc).__name__})"
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        found.append("bytes after the end of the image")
    return f"carries {', '.join(sorted(set(found)))}" if found else None


def run_audit() -> AuditReport:
    """Run every check in a fresh read; a check that crashes is reported as a failure."""
    results = []
    for name, fn in CHECKS:
        result = CheckResult(name)
        started = time.perf_counter()
        try:
            fn(result)
        except Exception as exc:  # noqa: BLE001 - the auditor reports, it does not stop
            logger.exception("audit check %s crashed", name)
            reset()
            result.failures.append(f"check could not run: {type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - started
        results.append(result)
    reset()  # the auditor never writes
    return AuditReport(results)
