"""JobRepository (core.ports) on SQLAlchemy, and an in-memory twin for tests: the edit jobs of the distributed mode.

The job row is the truth about a job. Its id, chosen by the front-end before anything is queued, is the idempotency
key: a worker killed mid-edit makes the broker deliver the job again, and `complete` records the nodes and marks the
job done in one transaction, so a second delivery finds the job done and gets the same nodes back.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core.domain import EditParams, Node
from core.jobs import EditJob
from core.ports import FINISHED_STATES, HistoryRepository, JobRecord
from storage.database import read_only
from storage.models import JobRow, NodeRow
from storage.repository import _as_utc, _to_node, insert_node, to_translation


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
            if not _claimable(row.state, row.heartbeat_at and _as_utc(row.heartbeat_at), stale_after):
                return _to_record(row), False
            row.state, row.worker, row.attempts, row.heartbeat_at = "running", worker, row.attempts + 1, _now()
            return _to_record(row), True

    def progress(self, job_id: str, step: int, total: int) -> None:
        with self._writes.begin() as session:
            row = _lock_job(session, job_id)
            if row is not None and row.state == "running":
                row.step, row.total, row.heartbeat_at = step, total, _now()

    def complete(self, job_id: str, results: Sequence[tuple[str, EditParams, float]]) -> list[Node]:
        """Record the nodes and mark the job done, in one transaction; a job already done returns its nodes."""
        with self._writes.begin() as session:
            row = _lock_job(session, job_id)
            if row is None:
                raise ValueError(f"no job {job_id}")
            if row.state == "done":
                nodes = session.scalars(select(NodeRow).where(NodeRow.id.in_(row.node_ids)))
                by_id = {node.id: _to_node(node) for node in nodes}
                return [by_id[node_id] for node_id in row.node_ids]
            if row.state in FINISHED_STATES:
                raise ValueError(f"job {job_id} is {row.state}")
            candidates = bool(row.variants)
            translation = to_translation(row.original_instruction, row.language)
            nodes = [
                insert_node(session, row.conversation_id, row.parent_id, digest, row.instruction, params, seconds,
                            make_head=not candidates, translation=translation)
                for digest, params, seconds in results
            ]
            row.state, row.node_ids, row.heartbeat_at = "done", [node.id for node in nodes], _now()
            return nodes

    def fail(self, job_id: str, error: str, *, cancelled: bool = False) -> JobRecord | None:
        with self._writes.begin() as session:
            row = _lock_job(session, job_id)
            if row is not None and row.state not in FINISHED_STATES:
                row.state, row.error = ("cancelled" if cancelled else "failed"), error
            return None if row is None else _to_record(row)

    def cancel(self, job_id: str) -> JobRecord | None:
        with self._writes.begin() as session:
            row = _lock_job(session, job_id)
            if row is not None and row.state == "queued":
                row.state, row.error = "cancelled", CANCELLED
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


class InMemoryJobRepository:
    """The same contract over an in-memory history (storage.memory); one lock stands for the transaction."""

    def __init__(self, history: HistoryRepository) -> None:
        self._history = history
        self._lock = threading.Lock()
        self._jobs: dict[str, JobRecord] = {}

    def create(self, job_id: str, job: EditJob, frontend: str) -> JobRecord:
        with self._lock:
            if job_id not in self._jobs:
                self._jobs[job_id] = JobRecord(job_id, job, frontend, "queued", None, 0, 0, 0, (), None, False,
                                               _now(), None)
            return self._jobs[job_id]

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._jobs.get(job_id)

    def claim(self, job_id: str, worker: str, stale_after: float) -> tuple[JobRecord | None, bool]:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None or not _claimable(record.state, record.heartbeat_at, stale_after):
                return record, False
            record = self._jobs[job_id] = replace(record, state="running", worker=worker,
                                                  attempts=record.attempts + 1, heartbeat_at=_now())
            return record, True

    def progress(self, job_id: str, step: int, total: int) -> None:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is not None and record.state == "running":
                self._jobs[job_id] = replace(record, step=step, total=total, heartbeat_at=_now())

    def complete(self, job_id: str, results: Sequence[tuple[str, EditParams, float]]) -> list[Node]:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                raise ValueError(f"no job {job_id}")
            if record.state == "done":
                return [self._history.node(node_id) for node_id in record.node_ids]
            if record.finished:
                raise ValueError(f"job {job_id} is {record.state}")
            job = record.job
            nodes = [
                self._history.add_node(job.conversation_id, job.parent_id, digest, job.instruction, params, seconds,
                                       make_head=not job.variants, translation=job.translation)
                for digest, params, seconds in results
            ]
            self._jobs[job_id] = replace(record, state="done", node_ids=tuple(node.id for node in nodes))
            return nodes

    def fail(self, job_id: str, error: str, *, cancelled: bool = False) -> JobRecord | None:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is not None and not record.finished:
                record = self._jobs[job_id] = replace(record, state="cancelled" if cancelled else "failed",
                                                      error=error)
            return record

    def cancel(self, job_id: str) -> JobRecord | None:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is not None and record.state == "queued":
                record = self._jobs[job_id] = replace(record, state="cancelled", error=CANCELLED)
            return record

    def mark_delivered(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._jobs:
                self._jobs[job_id] = replace(self._jobs[job_id], delivered=True)

    def undelivered(self, frontend: str) -> list[JobRecord]:
        with self._lock:
            return [record for record in self._jobs.values() if record.frontend == frontend and not record.delivered]


CANCELLED = "Edit cancelled."


def _now() -> datetime:
    return datetime.now(UTC)


def _claimable(state: str, heartbeat_at: datetime | None, stale_after: float) -> bool:
    if state == "queued":
        return True
    return state == "running" and (heartbeat_at is None or _now() - heartbeat_at >= timedelta(seconds=stale_after))


def _lock_job(session: Session, job_id: str) -> JobRow | None:
    return session.scalars(select(JobRow).where(JobRow.id == job_id).with_for_update()).one_or_none()


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
        delivered=row.delivered,
        created_at=_as_utc(row.created_at),
        heartbeat_at=row.heartbeat_at and _as_utc(row.heartbeat_at),
    )
