"""The edit jobs of the distributed mode: the job record, the JobRepository contract, and it on SQLAlchemy (the in-memory
twin the contract tests also run is tests.support.fakes.InMemoryJobRepository).

The job row is the truth about a job. Its id, chosen by the front-end before anything is queued, is the idempotency
key: a worker killed mid-edit makes the broker deliver the job again, and `complete` records the nodes and marks the
job done in one transaction, so a second delivery finds the job done and gets the same nodes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core.domain import EditJob, EditParams, NewNode, Node, Region, Rendered
from core.errors import EditCancelled
from storage.database import read_only
from storage.models import JobRow, NodeRow
from storage.rows import as_utc, node_from_row, to_translation
from storage.statements import insert_node

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True)
class JobRecord:
    """One edit job as the job table holds it (distributed mode): the row is the truth about the job.

    frontend: the front-end that submitted it and delivers its result (re-attached after a restart).
    worker/heartbeat: who runs it and when it last reported a step; a stale heartbeat lets another worker take over.
    node_ids: the nodes recorded once done. error: the one human line of a failed or cancelled job, failure_kind how
    its failure is counted (core.errors.failure_kind: EditCancelled, UnsafeImage, ..., or "internal").
    delivered: the outcome reached the front-end.
    """

    id: str
    job: EditJob
    frontend: str
    state: JobState
    worker: str | None
    attempts: int
    step: int
    total: int
    node_ids: tuple[int, ...]
    error: str | None
    failure_kind: str | None
    delivered: bool
    created_at: datetime
    heartbeat_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


class JobRepository(Protocol):
    """Edit jobs of the distributed mode. Every method is one transaction. The job id is the idempotency key: a job
    delivered twice (a worker died, the broker redelivered) is recorded once."""

    def create(self, job_id: str, job: EditJob, frontend: str) -> JobRecord:
        """Record a queued job; creating an existing id returns the existing row unchanged."""

    def get(self, job_id: str) -> JobRecord | None: ...

    def claim(self, job_id: str, worker: str, stale_after: float) -> tuple[JobRecord | None, bool]:
        """Take the job for `worker`: (the row, True) if it was queued, or running with no heartbeat for
        `stale_after` seconds (its worker died). (row, False) when it is finished or alive elsewhere; (None, False)
        for an unknown id."""

    def progress(self, job_id: str, step: int, total: int) -> None:
        """Record a denoising step; doubles as the running worker's heartbeat."""

    def complete(self, job_id: str, results: Sequence[Rendered]) -> list[Node]:
        """Record the job's nodes (image digest, params used, seconds each; the images already stored) AND mark the
        job done, in one transaction. Idempotent: for a job already done, the nodes it recorded, never new ones.
        Raises ValueError for an unknown job, or one failed or cancelled meanwhile (nothing is recorded)."""

    def fail(self, job_id: str, error: str, kind: str, *, cancelled: bool = False) -> JobRecord | None:
        """Mark an unfinished job failed (or cancelled) with the line to show and the failure's kind; a finished job is
        left as it is."""

    def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel the job if it is still queued (a running one is stopped by its worker), its kind EditCancelled.
        Returns the row."""

    def mark_delivered(self, job_id: str) -> None: ...

    def undelivered(self, frontend: str) -> list[JobRecord]:
        """The front-end's jobs whose outcome it has not delivered yet, oldest first: re-attached on restart."""

    def adopt(self, frontends: Sequence[str], to: str) -> list[JobRecord]:
        """Move the undelivered jobs of `frontends` (which stopped) to the front-end `to`; the rows moved, oldest
        first, as `to` now has them."""


class SqlJobRepository:
    """Jobs in the `jobs` table of the database behind `engine` (the same one as the history)."""

    def __init__(self, engine: Engine) -> None:
        self._writes = sessionmaker(engine, expire_on_commit=False)
        self._reads = sessionmaker(read_only(engine), expire_on_commit=False)

    def create(self, job_id: str, job: EditJob, frontend: str) -> JobRecord:
        """Record a queued job; an existing id returns the existing row unchanged."""
        with self._writes.begin() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                row = JobRow(
                    id=job_id,
                    conversation_id=job.conversation_id,
                    person=job.person,
                    frontend=frontend,
                    parent_id=job.parent_id,
                    image_hash=job.image_hash,
                    instruction=job.instruction,
                    original_instruction=job.translation and job.translation.original,
                    language=job.translation and job.translation.language,
                    params=asdict(job.params),
                    variants=[asdict(variant) for variant in job.variants],
                    region=None if job.region is None else asdict(job.region),
                    inputs=list(job.references) or None,
                    state="queued",
                    attempts=0,
                    step=0,
                    total=0,
                    node_ids=[],
                    delivered=False,
                )
                session.add(row)
                session.flush()
            return _to_record(row)

    def get(self, job_id: str) -> JobRecord | None:
        with self._reads.begin() as session:
            row = session.get(JobRow, job_id)
            return None if row is None else _to_record(row)

    def claim(self, job_id: str, worker: str, stale_after: float) -> tuple[JobRecord | None, bool]:
        """Take a queued job, or a running one whose worker stopped reporting for `stale_after` seconds."""
        with self._writes.begin() as session:
            row = _lock_job(session, job_id)
            if row is None:
                return None, False
            if not claimable(row.state, row.heartbeat_at and as_utc(row.heartbeat_at), stale_after):
                return _to_record(row), False
            row.state, row.worker, row.attempts, row.heartbeat_at = "running", worker, row.attempts + 1, _now()
            return _to_record(row), True

    def progress(self, job_id: str, step: int, total: int) -> None:
        with self._writes.begin() as session:
            row = _lock_job(session, job_id)
            if row is not None and row.state == "running":
                row.step, row.total, row.heartbeat_at = step, total, _now()

    def complete(self, job_id: str, results: Sequence[Rendered]) -> list[Node]:
        """Record the nodes and mark the job done, in one transaction; a job already done returns its nodes."""
        with self._writes.begin() as session:
            row = _lock_job(session, job_id)
            if row is None:
                raise ValueError(f"no job {job_id}")
            if row.state == "done":
                nodes = session.scalars(select(NodeRow).where(NodeRow.id.in_(row.node_ids)))
                by_id = {node.id: node_from_row(node) for node in nodes}
                return [by_id[node_id] for node_id in row.node_ids]
            if row.state in FINISHED_STATES:
                raise ValueError(f"job {job_id} is {row.state}")
            candidates = bool(row.variants)
            translation = to_translation(row.original_instruction, row.language)
            connection = session.connection()  # the nodes are written with Core statements, in this transaction
            nodes = [
                insert_node(connection, NewNode(row.conversation_id, row.parent_id, result.digest, row.instruction,
                                                result.params, result.seconds, make_head=not candidates,
                                                stored_bytes=result.stored_bytes, translation=translation,
                                                region=_region(row.region), source=result.source,
                                                inputs=tuple(row.inputs or ())))
                for result in results
            ]
            row.state, row.node_ids, row.heartbeat_at = "done", [node.id for node in nodes], _now()
            return nodes

    def fail(self, job_id: str, error: str, kind: str, *, cancelled: bool = False) -> JobRecord | None:
        with self._writes.begin() as session:
            row = _lock_job(session, job_id)
            if row is not None and row.state not in FINISHED_STATES:
                row.state, row.error, row.failure_kind = ("cancelled" if cancelled else "failed"), error, kind
            return None if row is None else _to_record(row)

    def cancel(self, job_id: str) -> JobRecord | None:
        with self._writes.begin() as session:
            row = _lock_job(session, job_id)
            if row is not None and row.state == "queued":
                row.state, row.error, row.failure_kind = "cancelled", CANCELLED, CANCELLED_KIND
            return None if row is None else _to_record(row)

    def mark_delivered(self, job_id: str) -> None:
        with self._writes.begin() as session:
            row = _lock_job(session, job_id)
            if row is not None:
                row.delivered = True

    def undelivered(self, frontend: str) -> list[JobRecord]:
        query = (
            select(JobRow)
            .where(JobRow.frontend == frontend, JobRow.delivered.is_(False))
            .order_by(JobRow.created_at, JobRow.id)
        )
        with self._reads.begin() as session:
            return [_to_record(row) for row in session.scalars(query)]

    def adopt(self, frontends: Sequence[str], to: str) -> list[JobRecord]:
        query = (
            select(JobRow)
            .where(JobRow.frontend.in_(frontends), JobRow.delivered.is_(False))
            .order_by(JobRow.created_at, JobRow.id)
            .with_for_update()
        )
        with self._writes.begin() as session:
            rows = list(session.scalars(query))
            for row in rows:
                row.frontend = to
            return [_to_record(row) for row in rows]


CANCELLED = "Edit cancelled."
CANCELLED_KIND = EditCancelled.__name__


def _now() -> datetime:
    return datetime.now(UTC)


def claimable(state: str, heartbeat_at: datetime | None, stale_after: float) -> bool:
    """Whether a job may be claimed: queued, or running with no heartbeat for `stale_after` seconds."""
    if state == "queued":
        return True
    return state == "running" and (heartbeat_at is None or _now() - heartbeat_at >= timedelta(seconds=stale_after))


def _lock_job(session: Session, job_id: str) -> JobRow | None:
    return session.scalars(select(JobRow).where(JobRow.id == job_id).with_for_update()).one_or_none()


def _region(stored: dict | None) -> Region | None:
    return None if stored is None else Region(**stored)


def _to_record(row: JobRow) -> JobRecord:
    job = EditJob(
        conversation_id=row.conversation_id,
        person=row.person,
        parent_id=row.parent_id,
        image_hash=row.image_hash,
        instruction=row.instruction,
        params=EditParams(**row.params),
        variants=tuple(EditParams(**variant) for variant in row.variants),
        translation=to_translation(row.original_instruction, row.language),
        region=_region(row.region),
        references=tuple(row.inputs or ()),
    )
    return JobRecord(
        id=row.id,
        job=job,
        frontend=row.frontend,
        state=row.state,
        worker=row.worker,
        attempts=row.attempts,
        step=row.step,
        total=row.total,
        node_ids=tuple(row.node_ids),
        error=row.error,
        failure_kind=row.failure_kind,
        delivered=row.delivered,
        created_at=as_utc(row.created_at),
        heartbeat_at=row.heartbeat_at and as_utc(row.heartbeat_at),
    )
