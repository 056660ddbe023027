"""One contract for every JobRepository: in memory, SQLite and PostgreSQL (when EDITBOT_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from bot.distributed.jobs import SqlJobRepository
from core.errors import EDIT_FAILED_ON_OUR_SIDE
from core.domain import ChatKey, EditJob, EditParams, NewNode, Region, Rendered, Translation
from storage.database import make_engine
from storage.memory import InMemoryHistoryRepository
from storage.migrate import upgrade
from storage.repository import SqlHistoryRepository
from tests.support.fakes import InMemoryJobRepository

ALICE = ChatKey("telegram", "100", "1")
USED = EditParams(text_guidance=9.0, image_guidance=1.2, steps=3, seed=7)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stores(request, tmp_path) -> Iterator[tuple]:
    """(history, jobs) over one backend."""
    if request.param == "memory":
        history = InMemoryHistoryRepository()
        yield history, InMemoryJobRepository(history)
        return
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue(
        "postgres_url")
    upgrade(url)
    engine = make_engine(url)
    try:
        yield SqlHistoryRepository(engine), SqlJobRepository(engine)
    finally:
        engine.dispose()


@pytest.fixture
def history(stores):
    return stores[0]


@pytest.fixture
def jobs(stores):
    return stores[1]


@pytest.fixture
def job(history) -> EditJob:
    conversation = history.conversation(ALICE)
    root = history.add_node(NewNode(conversation.id, None, "a" * 64, None, None, None))
    return EditJob(conversation.id, "telegram:1", root.id, root.image_hash, "make it snow", USED)


def test_create_is_idempotent_and_keeps_the_job_whole(jobs, job):
    first = jobs.create("job-1", job, "telegram")
    again = jobs.create("job-1", job, "other-frontend")
    assert again == first
    assert first.state == "queued" and first.job == job and first.frontend == "telegram"
    assert jobs.get("job-1") == first
    assert jobs.get("nope") is None


def test_a_translated_job_carries_the_persons_words_to_the_node_it_records(jobs, history, job):
    said = Translation("fais-le enneigé", "French")
    translated = replace(job, instruction="make it snowy", translation=said)
    assert jobs.create("job-1", translated, "telegram").job == translated
    [node] = jobs.complete("job-1", [Rendered("b" * 64, USED, 1.5, 10)])
    assert node.instruction == "make it snowy" and node.translation == said
    assert history.node(node.id).translation == said


def test_a_job_of_another_model_keeps_its_values_and_references_and_records_them(jobs, history, job):
    klein = EditParams(steps=4, seed=7, family="flux2-klein", extras={"guidance": 2.5}, model="klein")
    other = replace(job, params=klein, variants=(klein, replace(klein, seed=8)), references=("c" * 64, "d" * 64))
    assert jobs.create("job-m", other, "telegram").job == other
    assert jobs.get("job-m").job == other
    source = "black-forest-labs/FLUX.2-klein-4B"
    nodes = jobs.complete("job-m", [Rendered("e" * 64, klein, 1.0, 10, source),
                                    Rendered("f" * 64, replace(klein, seed=8), 1.0, 10, source)])
    for node in (*nodes, *(history.node(node.id) for node in nodes)):
        assert node.params.model == "klein" and node.params.extra("guidance") == 2.5
        assert node.source == source and node.inputs == ("c" * 64, "d" * 64)


def test_a_regional_job_keeps_its_region_and_records_it_on_its_node(jobs, history, job):
    regional = replace(job, region=Region("the person", inverse=True))
    assert jobs.create("job-r", regional, "telegram").job == regional
    assert jobs.get("job-r").job.region == Region("the person", inverse=True)
    jobs.claim("job-r", "worker-a", stale_after=60)
    [node] = jobs.complete("job-r", [Rendered("b" * 64, USED, 1.5, 10)])
    assert node.region == Region("the person", inverse=True) == history.node(node.id).region


def test_a_queued_job_is_claimed_once_while_its_worker_reports(jobs, job):
    jobs.create("job-1", job, "telegram")
    record, claimed = jobs.claim("job-1", "worker-a", stale_after=60)
    assert claimed and record.state == "running" and record.worker == "worker-a" and record.attempts == 1
    jobs.progress("job-1", 2, 3)
    record, claimed = jobs.claim("job-1", "worker-b", stale_after=60)
    assert not claimed and record.worker == "worker-a" and (record.step, record.total) == (2, 3)
    assert jobs.claim("unknown", "worker-b", stale_after=60) == (None, False)


def test_a_job_whose_worker_went_silent_is_taken_over(jobs, job):
    jobs.create("job-1", job, "telegram")
    jobs.claim("job-1", "worker-a", stale_after=60)
    time.sleep(0.05)
    record, claimed = jobs.claim("job-1", "worker-b", stale_after=0.01)
    assert claimed and record.worker == "worker-b" and record.attempts == 2


def test_complete_records_the_node_and_finishes_the_job_exactly_once(jobs, history, job):
    jobs.create("job-1", job, "telegram")
    jobs.claim("job-1", "worker-a", stale_after=60)
    [node] = jobs.complete("job-1", [Rendered("b" * 64, USED, 1.5, 100)])
    assert node.parent_id == job.parent_id and node.params == USED and node.instruction == "make it snow"
    assert history.conversation(ALICE).head_id == node.id
    record = jobs.get("job-1")
    assert record.state == "done" and record.node_ids == (node.id,) and record.finished

    # A redelivered job completing again (another worker, another render) gets the same node back, not a new one.
    assert jobs.complete("job-1", [Rendered("c" * 64, USED.with_seed(8), 2.0, 100)]) == [node]
    assert [child.id for child in history.children(job.parent_id)] == [node.id]
    record, claimed = jobs.claim("job-1", "worker-b", stale_after=0)
    assert not claimed and record.state == "done"


def test_concurrent_completions_record_one_node(jobs, history, job):
    jobs.create("job-1", job, "telegram")
    jobs.claim("job-1", "worker-a", stale_after=60)
    results = []

    def complete(seed):
        results.append(jobs.complete("job-1", [Rendered("b" * 64, USED.with_seed(seed), 1.0, 100)]))

    threads = [threading.Thread(target=complete, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(history.children(job.parent_id)) == 1
    assert all(result == results[0] for result in results)


def test_a_variants_job_records_candidates_that_do_not_move_the_head(jobs, history, job):
    variants = (USED, USED.with_seed(9))
    batch = EditJob(job.conversation_id, job.person, job.parent_id, job.image_hash, job.instruction, USED, variants)
    assert jobs.create("job-1", batch, "telegram").job.variants == variants
    jobs.claim("job-1", "worker-a", stale_after=60)
    nodes = jobs.complete("job-1", [Rendered("b" * 64, USED, 1.0, 100),
                                    Rendered("c" * 64, USED.with_seed(9), 1.0, 100)])
    assert [node.visit for node in nodes] == [0, 0]
    assert history.conversation(ALICE).head_id == job.parent_id


def test_cancel_stops_a_queued_job_but_leaves_a_running_one_to_its_worker(jobs, history, job):
    jobs.create("queued", job, "telegram")
    cancelled = jobs.cancel("queued")
    assert cancelled.state == "cancelled" and cancelled.failure_kind == "EditCancelled"
    with pytest.raises(ValueError):
        jobs.complete("queued", [Rendered("b" * 64, USED, 1.0, 100)])
    assert history.children(job.parent_id) == []

    jobs.create("running", job, "telegram")
    jobs.claim("running", "worker-a", stale_after=60)
    assert jobs.cancel("running").state == "running"
    failed = jobs.fail("running", "Edit cancelled.", "EditCancelled", cancelled=True)
    assert failed.state == "cancelled" and failed.error == "Edit cancelled." and failed.failure_kind == "EditCancelled"
    assert jobs.cancel("unknown") is None


def test_fail_keeps_the_line_and_the_kind_and_never_undoes_a_finished_job(jobs, job):
    assert jobs.create("job-1", job, "telegram").failure_kind is None
    jobs.claim("job-1", "worker-a", stale_after=60)
    failed = jobs.fail("job-1", "That result was flagged as unsafe.", "UnsafeImage")
    assert (failed.state, failed.error, failed.failure_kind) == ("failed", "That result was flagged as unsafe.",
                                                                 "UnsafeImage")
    assert jobs.get("job-1") == failed
    assert jobs.fail("job-1", "again", "internal").failure_kind == "UnsafeImage"  # the first outcome stands
    jobs.create("job-2", job, "telegram")
    jobs.claim("job-2", "worker-a", stale_after=60)
    jobs.complete("job-2", [Rendered("b" * 64, USED, 1.0, 100)])
    done = jobs.fail("job-2", "too late", "internal")
    assert done.state == "done" and done.failure_kind is None


def test_undelivered_lists_a_frontends_jobs_until_marked_delivered(jobs, job):
    for job_id, frontend in [("t1", "telegram"), ("d1", "discord"), ("t2", "telegram")]:
        jobs.create(job_id, job, frontend)
        time.sleep(0.002)  # distinct creation times: the order is the queue's
    assert [record.id for record in jobs.undelivered("telegram")] == ["t1", "t2"]
    jobs.mark_delivered("t1")
    assert [record.id for record in jobs.undelivered("telegram")] == ["t2"]
    assert [record.id for record in jobs.undelivered("discord")] == ["d1"]


def test_adopt_moves_the_undelivered_jobs_of_stopped_frontends(jobs, job):
    for job_id, frontend in [("a1", "web"), ("b1", "web-2"), ("a2", "web"), ("c1", "web-3"), ("a3", "web")]:
        jobs.create(job_id, job, frontend)
        time.sleep(0.002)
    jobs.mark_delivered("a2")
    moved = jobs.adopt(["web", "web-3"], "web-2")
    assert [(record.id, record.frontend) for record in moved] == [("a1", "web-2"), ("c1", "web-2"), ("a3", "web-2")]
    assert [record.id for record in jobs.undelivered("web-2")] == ["a1", "b1", "c1", "a3"]
    assert jobs.undelivered("web") == [] and jobs.get("a2").frontend == "web"  # delivered: left where it was
    assert jobs.adopt(["web"], "web-2") == []


def _migrate(connection, revision: str) -> None:
    from alembic import command

    from storage.migrate import alembic_config

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _old_tree(connection) -> None:
    """Rows as an older schema holds them, written in SQL (the ORM classes are the newest schema): one conversation
    whose head is node 2 of the chain 1 <- 2 <- 3."""
    connection.exec_driver_sql(
        "INSERT INTO conversations (id, platform, chat_id, user_id, text_guidance, image_guidance, steps, scheduler, "
        "visit_counter, created_at, updated_at) VALUES (1, 't', 'c', 'u', 7.5, 1.5, 20, 'euler-a', 2, '2026-01-01', "
        "'2026-01-01')")
    for node_id, parent_id in [(1, None), (2, 1), (3, 2)]:
        connection.exec_driver_sql(
            "INSERT INTO nodes (id, conversation_id, parent_id, image_hash, created_at, visit) "
            "VALUES (?, 1, ?, 'h', '2026-01-01', 1)", (node_id, parent_id))
    connection.exec_driver_sql("UPDATE conversations SET head_id = 2")


def _old_job(connection, job_id: str, state: str, error: str | None) -> None:
    connection.exec_driver_sql(
        "INSERT INTO jobs (id, conversation_id, person, frontend, parent_id, image_hash, instruction, params, variants, "
        "state, attempts, step, total, node_ids, error, delivered, created_at, updated_at) VALUES (?, 1, 'p', 'f', 2, "
        "'h', 'i', '{}', '[]', ?, 1, 0, 0, '[]', ?, 0, '2026-01-01', '2026-01-01')", (job_id, state, error))


def test_jobs_failed_before_kinds_were_kept_get_the_kind_metrics_gave_them(tmp_path):
    """Migration 0004_job_failure_kind: rows from before it had only their line; "internal" for a failure on our side."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        with engine.begin() as connection:
            _migrate(connection, "0003_conversation_state")  # the one before
            _old_tree(connection)
            for job_id, state, error in [("ours", "failed", EDIT_FAILED_ON_OUR_SIDE), ("unsafe", "failed", "Flagged."),
                                         ("stopped", "cancelled", "Edit cancelled."), ("fine", "done", None)]:
                _old_job(connection, job_id, state, error)
            _migrate(connection, "head")
            kinds = dict(connection.exec_driver_sql("SELECT id, failure_kind FROM jobs").all())
    finally:
        engine.dispose()
    assert kinds == {"ours": "internal", "unsafe": "UserError", "stopped": "EditCancelled", "fine": None}


def test_node_ids_migration_keeps_every_row_and_stops_id_reuse(tmp_path):
    """Migration 0008_node_ids rebuilds SQLite's nodes table with AUTOINCREMENT: heads, parents and jobs still point at
    their rows, and the id of a deleted newest node is not given again."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _migrate(connection, "0004_job_failure_kind")  # the one before
            _old_tree(connection)
            _old_job(connection, "j", "done", None)
        with engine.begin() as connection:
            _migrate(connection, "head")
        history = SqlHistoryRepository(engine)
        assert history.conversation_by_id(1).head_id == 2 and [node.id for node in history.path(3)] == [1, 2, 3]
        with engine.begin() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
            connection.exec_driver_sql("DELETE FROM nodes WHERE id = 3")
        assert history.add_node(NewNode(1, 2, "h2", None, None, None)).id == 4
    finally:
        engine.dispose()
