"""One contract for every HistoryRepository: the in-memory fake, SQLite and PostgreSQL must behave alike.

PostgreSQL runs when EDITBOT_TEST_POSTGRES_URL is set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test);
each test gets a fresh schema of its own, dropped afterwards.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select

from core.domain import ChatKey, EditParams, NewNode, Region, Translation
from core.errors import BadParams
from core.ports import HistoryRepository
from storage.database import make_engine
from storage.memory import InMemoryHistoryRepository
from storage.migrate import upgrade
from storage.models import Base, NodeRow
from storage.repository import SqlHistoryRepository

POSTGRES_ENV = "EDITBOT_TEST_POSTGRES_URL"
ALICE = ChatKey("telegram", "100", "1")
BOB = ChatKey("telegram", "100", "2")  # same chat as Alice, another person
USED = EditParams(text_guidance=9.0, image_guidance=1.2, steps=30, seed=2**32 - 1, scheduler="euler-a")


@dataclass
class Backend:
    repository: HistoryRepository
    engine: Engine | None = None  # None for the in-memory fake


def _a_moment_between() -> datetime:
    """A cutoff strictly after everything recorded so far and strictly before anything recorded next."""
    time.sleep(0.002)
    moment = datetime.now(UTC)
    time.sleep(0.002)
    return moment


def _sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'nested' / 'editbot.sqlite3'}"


def _sql_backend(url: str) -> Iterator[Backend]:
    upgrade(url)
    engine = make_engine(url)
    try:
        yield Backend(SqlHistoryRepository(engine), engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend(InMemoryHistoryRepository())
    elif request.param == "sqlite":
        yield from _sql_backend(_sqlite_url(tmp_path))
    else:
        yield from _sql_backend(request.getfixturevalue("postgres_url"))


@pytest.fixture
def repo(backend) -> HistoryRepository:
    return backend.repository


class TestHistoryRepositoryContract:
    def test_conversation_is_created_once_per_person_per_chat(self, repo):
        alice = repo.conversation(ALICE)
        assert repo.conversation(ALICE) == alice
        bob = repo.conversation(BOB)
        elsewhere = repo.conversation(ChatKey("discord", "100", "1"))
        assert len({alice.id, bob.id, elsewhere.id}) == 3
        assert (alice.key, bob.key) == (ALICE, BOB)

    def test_new_conversation_has_no_head_and_default_settings(self, repo):
        conversation = repo.conversation(ALICE)
        assert conversation.head_id is None
        assert conversation.settings == EditParams()

    def test_add_root_records_it_and_makes_it_head(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "a" * 64, None, None, None))
        assert (root.conversation_id, root.parent_id, root.image_hash) == (conversation.id, None, "a" * 64)
        assert (root.instruction, root.params, root.seconds) == (None, None, None)
        assert root.created_at.tzinfo is not None and root.created_at.utcoffset() == UTC.utcoffset(None)
        assert repo.conversation_by_id(conversation.id).head_id == root.id
        assert repo.node(root.id) == root

    def test_add_child_records_what_was_used(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "root", None, None, None))
        child = repo.add_node(NewNode(conversation.id, root.id, "child", "make it snow", USED, 3.25))
        assert (child.parent_id, child.instruction) == (root.id, "make it snow")
        assert (child.params, child.seconds) == (USED, 3.25)
        assert repo.node(child.id) == child
        assert repo.conversation(ALICE).head_id == child.id

    def test_a_translated_edit_keeps_the_persons_words_beside_the_english(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "root"))
        said = Translation("rends la photo enneigée", "French")
        child = repo.add_node(NewNode(conversation.id, root.id, "child", "make the photo snowy", USED, 1.0,
                                      translation=said))
        assert child.instruction == "make the photo snowy" and child.translation == said
        assert repo.node(child.id) == child and repo.path(child.id)[-1].translation == said
        assert repo.node(root.id).translation is None

    def test_a_candidate_is_recorded_without_becoming_head_until_adopted(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "root", None, None, None))
        kept = repo.add_node(NewNode(conversation.id, root.id, "kept", "make it snow", USED, 1.0))
        candidate = repo.add_node(NewNode(conversation.id, root.id, "cand", "make it snow", USED, 1.0, make_head=False))
        assert candidate.visit == 0 and repo.node(candidate.id) == candidate
        assert repo.conversation(ALICE).head_id == kept.id
        assert [node.id for node in repo.children(root.id)] == [kept.id, candidate.id]

        repo.move_head(conversation.id, candidate.id)
        assert repo.node(candidate.id).visit > repo.node(kept.id).visit

    def test_path_runs_from_root_down_to_the_node(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "h0", None, None, None))
        first = repo.add_node(NewNode(conversation.id, root.id, "h1", "one", USED, 1.0))
        repo.add_node(NewNode(conversation.id, root.id, "side", "side branch", USED, 1.0))
        second = repo.add_node(NewNode(conversation.id, first.id, "h2", "two", USED, 1.0))
        assert [node.id for node in repo.path(second.id)] == [root.id, first.id, second.id]
        assert repo.path(root.id) == [repo.node(root.id)]

    def test_tree_is_every_node_under_the_root_oldest_first_from_any_node(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "h0"))
        first = repo.add_node(NewNode(conversation.id, root.id, "h1", "one", USED, 1.0))
        side = repo.add_node(NewNode(conversation.id, root.id, "side", "side", USED, 1.0, make_head=False))
        deeper = repo.add_node(NewNode(conversation.id, first.id, "h2", "two", USED, 1.0))
        other_root = repo.add_node(NewNode(conversation.id, None, "other"))
        repo.add_node(NewNode(repo.conversation(BOB).id, None, "bob"))
        expected = [root.id, first.id, side.id, deeper.id]
        for member in expected:
            assert [node.id for node in repo.tree(member)] == expected
        assert [node.id for node in repo.tree(other_root.id)] == [other_root.id]
        assert repo.tree(10**9) == []

    def test_roots_are_the_conversations_photos_newest_first(self, repo):
        conversation = repo.conversation(ALICE)
        first = repo.add_node(NewNode(conversation.id, None, "h0"))
        repo.add_node(NewNode(conversation.id, first.id, "h1", "one", USED, 1.0))
        second = repo.add_node(NewNode(conversation.id, None, "h2"))
        repo.move_head(conversation.id, None)
        repo.add_node(NewNode(repo.conversation(BOB).id, None, "bob"))
        assert [node.id for node in repo.roots(conversation.id)] == [second.id, first.id]
        assert repo.roots(10**9) == []

    def test_children_come_oldest_first(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "h0", None, None, None))
        made = [repo.add_node(NewNode(conversation.id, root.id, f"h{i}", f"edit {i}", USED, 1.0)).id for i in range(4)]
        repo.add_node(NewNode(conversation.id, made[0], "grandchild", "deeper", USED, 1.0))
        assert [node.id for node in repo.children(root.id)] == made
        assert repo.children(made[1]) == []

    def test_each_new_head_gets_a_higher_visit(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "h0", None, None, None))
        child = repo.add_node(NewNode(conversation.id, root.id, "h1", "edit", USED, 1.0))
        assert child.visit > root.visit

        moved = repo.move_head(conversation.id, root.id)  # undo
        assert moved.head_id == root.id
        assert repo.node(root.id).visit > child.visit
        repo.move_head(conversation.id, child.id)  # redo
        assert repo.node(child.id).visit > repo.node(root.id).visit
        assert repo.conversation(ALICE).head_id == child.id

    def test_visits_count_per_conversation(self, repo):
        alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
        alice_root = repo.add_node(NewNode(alice.id, None, "a", None, None, None))
        repo.add_node(NewNode(alice.id, alice_root.id, "a1", "edit", USED, 1.0))
        bob_root = repo.add_node(NewNode(bob.id, None, "b", None, None, None))
        assert bob_root.visit == alice_root.visit

    def test_head_can_be_cleared(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "h0", None, None, None))
        assert repo.move_head(conversation.id, None).head_id is None
        assert repo.conversation_by_id(conversation.id).head_id is None
        assert repo.node(root.id) == root  # the tree stays

    def test_a_branch_after_undo_keeps_the_old_branch_and_redo_prefers_the_latest(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "h0", None, None, None))
        old = repo.add_node(NewNode(conversation.id, root.id, "old", "first idea", USED, 1.0))
        repo.move_head(conversation.id, root.id)
        new = repo.add_node(NewNode(conversation.id, root.id, "new", "second idea", USED, 1.0))

        assert [node.id for node in repo.children(root.id)] == [old.id, new.id]
        assert repo.node(old.id) == old
        repo.move_head(conversation.id, root.id)
        redo_target = max(repo.children(root.id), key=lambda node: node.visit)
        assert redo_target.id == new.id

        repo.move_head(conversation.id, old.id)  # walk into the old branch
        repo.move_head(conversation.id, root.id)
        assert max(repo.children(root.id), key=lambda node: node.visit).id == old.id

    def test_a_parent_from_another_conversation_is_refused_and_nothing_is_written(self, repo):
        alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
        alice_root = repo.add_node(NewNode(alice.id, None, "alice", None, None, None))
        bob_root = repo.add_node(NewNode(bob.id, None, "bob", None, None, None))

        with pytest.raises(ValueError):
            repo.add_node(NewNode(bob.id, alice_root.id, "intruder", "edit", USED, 1.0))
        with pytest.raises(ValueError):
            repo.add_node(NewNode(bob.id, 987_654, "dangling", "edit", USED, 1.0))

        assert repo.children(alice_root.id) == []
        assert repo.conversation_by_id(bob.id).head_id == bob_root.id
        assert repo.referenced_images() == {"alice", "bob"}
        # The visit counter did not move either: the next head gets the very next number.
        assert repo.add_node(NewNode(bob.id, bob_root.id, "fine", "edit", USED, 1.0)).visit == bob_root.visit + 1

    def test_moving_to_a_node_of_another_conversation_is_refused_and_nothing_is_written(self, repo):
        alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
        alice_root = repo.add_node(NewNode(alice.id, None, "alice", None, None, None))
        bob_root = repo.add_node(NewNode(bob.id, None, "bob", None, None, None))

        with pytest.raises(ValueError):
            repo.move_head(bob.id, alice_root.id)
        with pytest.raises(ValueError):
            repo.move_head(bob.id, 987_654)

        assert repo.conversation_by_id(bob.id).head_id == bob_root.id
        assert repo.node(alice_root.id) == alice_root

    def test_an_unknown_conversation_is_refused(self, repo):
        with pytest.raises(ValueError):
            repo.add_node(NewNode(987_654, None, "h", None, None, None))
        with pytest.raises(ValueError):
            repo.move_head(987_654, None)
        with pytest.raises(ValueError):
            repo.save_settings(987_654, EditParams())
        assert repo.referenced_images() == set()

    def test_settings_are_saved_and_read_back(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "h0", None, None, None))
        saved = repo.save_settings(conversation.id, USED)
        assert saved.settings == USED and saved.head_id == root.id
        assert repo.conversation(ALICE).settings == USED
        assert repo.conversation_by_id(conversation.id).settings == USED
        assert repo.conversation(BOB).settings == EditParams()

        random_seed = EditParams(text_guidance=1.0, image_guidance=0.0, steps=1, seed=None, scheduler="ddim")
        assert repo.save_settings(conversation.id, random_seed).settings == random_seed
        assert repo.conversation(ALICE).settings == random_seed

    def test_the_region_is_saved_read_back_and_cleared(self, repo):
        conversation = repo.conversation(ALICE)
        assert conversation.region is None
        saved = repo.save_region(conversation.id, Region("the sky"))
        assert saved.region == Region("the sky") and saved.settings == conversation.settings
        assert repo.save_region(conversation.id, Region("the person", inverse=True)).region == Region("the person",
                                                                                                        inverse=True)
        assert repo.conversation(ALICE).region == Region("the person", inverse=True)
        assert repo.conversation(BOB).region is None
        assert repo.save_region(conversation.id, None).region is None
        assert repo.conversation_by_id(conversation.id).region is None
        with pytest.raises(ValueError):
            repo.save_region(10_000, Region("the sky"))

    def test_a_node_records_the_region_it_was_confined_to(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "root"))
        whole = repo.add_node(NewNode(conversation.id, root.id, "whole", "make it snow", USED, 1.0))
        inverse = repo.add_node(NewNode(conversation.id, root.id, "inv", "make it snow", USED, 1.0,
                                        region=Region("the person", inverse=True)))
        assert (root.region, whole.region) == (None, None)
        assert repo.node(inverse.id).region == Region("the person", inverse=True)
        assert [child.region for child in repo.children(root.id)] == [None, Region("the person", inverse=True)]

    def test_out_of_range_settings_are_refused(self, repo):
        conversation = repo.conversation(ALICE)
        with pytest.raises(BadParams):
            repo.save_settings(conversation.id, EditParams(steps=0))
        assert repo.conversation(ALICE).settings == EditParams()

    def test_referenced_images_are_every_nodes_hash(self, repo):
        assert repo.referenced_images() == set()
        alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
        root = repo.add_node(NewNode(alice.id, None, "x", None, None, None))
        repo.add_node(NewNode(alice.id, root.id, "y", "edit", USED, 1.0))
        repo.add_node(NewNode(alice.id, root.id, "x", "same picture again", USED, 1.0))
        repo.add_node(NewNode(bob.id, None, "z", None, None, None))
        assert repo.referenced_images() == {"x", "y", "z"}

    def test_unknown_ids_give_none_or_nothing(self, repo):
        repo.conversation(ALICE)
        assert repo.conversation_by_id(987_654) is None
        assert repo.node(987_654) is None
        assert repo.children(987_654) == []
        assert repo.path(987_654) == []

    def test_purge_deletes_whole_trees_whose_newest_node_is_old_and_keeps_the_rest(self, repo):
        alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
        old_root = repo.add_node(NewNode(alice.id, None, "old-root", None, None, None))
        old_child = repo.add_node(NewNode(alice.id, old_root.id, "old-child", "edit", USED, 1.0))
        old_grandchild = repo.add_node(NewNode(alice.id, old_child.id, "shared", "edit", USED, 1.0))
        revisited_root = repo.add_node(NewNode(alice.id, None, "revisited-root", None, None, None))
        bob_root = repo.add_node(NewNode(bob.id, None, "bob-root", None, None, None))
        repo.save_settings(bob.id, USED)
        cutoff = _a_moment_between()
        recent_child = repo.add_node(NewNode(alice.id, revisited_root.id, "recent-child", "edit", USED, 1.0))
        recent_root = repo.add_node(NewNode(alice.id, None, "shared", None, None, None))  # same picture as an old node
        repo.move_head(alice.id, recent_child.id)

        assert repo.purge_before(cutoff) == 4  # Alice's first tree and Bob's
        for gone in (old_root, old_child, old_grandchild, bob_root):
            assert repo.node(gone.id) is None
        assert repo.children(old_root.id) == []
        assert [node.id for node in repo.path(recent_child.id)] == [revisited_root.id, recent_child.id]
        assert repo.node(recent_root.id) == recent_root
        assert repo.conversation(ALICE).head_id == recent_child.id
        bob_now = repo.conversation(BOB)
        assert bob_now.head_id is None and bob_now.settings == USED  # the head let go; the conversation stays
        assert repo.referenced_images() == {"revisited-root", "recent-child", "shared"}

        assert repo.purge_before(cutoff) == 0
        again = repo.add_node(NewNode(bob.id, None, "bob-again", None, None, None))
        assert again.id not in {old_root.id, old_child.id, old_grandchild.id, bob_root.id}

    def test_a_purged_node_id_is_never_given_again(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "root", None, None, None))
        newest = repo.add_node(NewNode(conversation.id, root.id, "edit", "edit", USED, 1.0))
        assert repo.purge_before(_a_moment_between()) == 2  # every node, the newest included
        again = repo.add_node(NewNode(conversation.id, None, "again", None, None, None))
        assert again.id > newest.id  # an old button (undo:<newest.id>) can never act on it

    def test_any_visit_counts_as_use_for_retention(self, repo):
        alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
        browsed = repo.add_node(NewNode(alice.id, None, "browsed", None, None, None))
        repo.add_node(NewNode(alice.id, browsed.id, "edit", "edit", USED, 1.0))
        pressed = repo.add_node(NewNode(bob.id, None, "pressed", None, None, None))
        forgotten = repo.add_node(NewNode(bob.id, None, "forgotten", None, None, None))
        cutoff = _a_moment_between()
        repo.move_head(alice.id, browsed.id)  # /undo
        assert repo.touch(pressed.id)  # a button pressed under it
        assert repo.purge_before(cutoff) == 1
        assert repo.node(forgotten.id) is None
        assert repo.node(pressed.id) is not None and len(repo.path(repo.conversation(ALICE).head_id)) == 1
        assert not repo.touch(forgotten.id) and not repo.touch(987_654)

    def test_stored_bytes_add_up_a_persons_pictures_once_each_across_chats(self, repo):
        alice, alice_elsewhere = repo.conversation(ALICE), repo.conversation(ChatKey("telegram", "200", "1"))
        root = repo.add_node(NewNode(alice.id, None, "photo", stored_bytes=1000))
        repo.add_node(NewNode(alice.id, root.id, "edit", "edit", USED, 1.0, stored_bytes=300))
        repo.add_node(NewNode(alice_elsewhere.id, None, "photo", stored_bytes=1000))  # the same picture again
        repo.add_node(NewNode(alice_elsewhere.id, None, "other", stored_bytes=20))
        repo.add_node(NewNode(repo.conversation(BOB).id, None, "bob", stored_bytes=7))
        assert repo.stored_bytes(ALICE.person) == 1320
        assert repo.stored_bytes(BOB.person) == 7 and repo.stored_bytes("telegram:nobody") == 0

    def test_an_edit_noted_and_not_forgotten_is_taken_once_as_interrupted(self, repo):
        alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
        alice_root = repo.add_node(NewNode(alice.id, None, "a", None, None, None))
        bob_root = repo.add_node(NewNode(bob.id, None, "b", None, None, None))
        repo.note_edit(alice.id, alice_root.id, "make it night")
        repo.note_edit(bob.id, bob_root.id, "make it day")
        repo.forget_edit(bob.id)  # Bob's edit ended
        with pytest.raises(ValueError):
            repo.note_edit(bob.id, alice_root.id, "not his picture")
        [(conversation, parent_id, instruction)] = repo.take_interrupted_edits()
        assert (conversation.key, parent_id, instruction) == (ALICE, alice_root.id, "make it night")
        assert repo.take_interrupted_edits() == []

    def test_purge_with_nothing_old_changes_nothing(self, repo):
        conversation = repo.conversation(ALICE)
        cutoff = _a_moment_between()
        root = repo.add_node(NewNode(conversation.id, None, "h0", None, None, None))
        assert repo.purge_before(cutoff) == 0
        assert repo.node(root.id) == root and repo.conversation(ALICE).head_id == root.id

    def test_the_last_grid_offered_is_kept_per_conversation_and_replaced_by_the_next(self, repo):
        alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
        root = repo.add_node(NewNode(alice.id, None, "r" * 64, None, None, None))
        cells = [repo.add_node(NewNode(alice.id, root.id, f"{n}" * 64, "x", USED, 1.0, make_head=False)).id for n in range(3)]
        assert repo.offer(alice.id) == []
        repo.save_offer(alice.id, cells)
        assert repo.offer(alice.id) == cells and repo.offer(bob.id) == []
        repo.save_offer(alice.id, cells[:1])
        assert repo.offer(alice.id) == cells[:1]
        with pytest.raises(ValueError):  # bob may not be offered alice's cells
            repo.save_offer(bob.id, cells)
        assert repo.offer(bob.id) == []

    def test_a_held_back_instruction_is_given_once(self, repo):
        alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
        root = repo.add_node(NewNode(alice.id, None, "r" * 64, None, None, None))
        assert repo.take_held_back(alice.id) is None
        repo.hold_back(alice.id, root.id, "mach es nachts")
        repo.hold_back(alice.id, root.id, "rends-le nocturne")  # the newest replaces the older
        with pytest.raises(ValueError):
            repo.hold_back(bob.id, root.id, "not bob's node")
        assert repo.take_held_back(bob.id) is None
        assert repo.take_held_back(alice.id) == (root.id, "rends-le nocturne")
        assert repo.take_held_back(alice.id) is None

    def test_purge_forgets_the_grid_and_held_back_instruction_of_a_deleted_tree(self, repo):
        alice = repo.conversation(ALICE)
        root = repo.add_node(NewNode(alice.id, None, "r" * 64, None, None, None))
        cell = repo.add_node(NewNode(alice.id, root.id, "c" * 64, "x", USED, 1.0, make_head=False))
        repo.save_offer(alice.id, [cell.id])
        repo.hold_back(alice.id, root.id, "too long")
        repo.purge_before(_a_moment_between())
        assert repo.offer(alice.id) == [] and repo.take_held_back(alice.id) is None

    def test_edit_counts_are_per_person_across_chats_since_a_moment(self, repo):
        def edits(key: ChatKey, count: int) -> None:
            conversation = repo.conversation(key)
            parent = repo.add_node(NewNode(conversation.id, None, "photo", None, None, None))  # a photo is not an edit
            for number in range(count):
                parent = repo.add_node(NewNode(conversation.id, parent.id, f"e{number}", "edit", USED, 1.0))

        edits(ChatKey("telegram", "old-chat", "7"), 5)
        since = _a_moment_between()
        edits(ALICE, 2)
        edits(ChatKey("telegram", "elsewhere", ALICE.user_id), 2)  # Alice in another chat
        edits(BOB, 3)
        edits(ChatKey("discord", "100", ALICE.user_id), 1)  # same number, another platform: another person
        edits(ChatKey("telegram", "100", "quiet"), 0)

        assert repo.edit_counts(since, 10) == [("telegram:1", 4), ("telegram:2", 3), ("discord:1", 1)]
        assert repo.edit_counts(since, 2) == [("telegram:1", 4), ("telegram:2", 3)]
        assert repo.edit_counts(_a_moment_between(), 10) == []

    def test_concurrent_writers_never_fail_and_every_tree_stays_valid(self, backend):
        repo = backend.repository
        threads_count, edits = 50, 5
        shared_key = ChatKey("test", "group", "everyone")
        start = threading.Barrier(threads_count)
        errors: list[BaseException] = []
        made: dict[int, list[int]] = {}
        shared_ids: set[int] = set()

        def person(number: int) -> None:
            try:
                start.wait()
                shared_ids.add(repo.conversation(shared_key).id)  # all racing to create one row
                conversation = repo.conversation(ChatKey("test", f"chat{number}", str(number)))
                ids = [repo.add_node(NewNode(conversation.id, None, f"{number}-root", None, None, None)).id]
                chooser = random.Random(number)
                for edit in range(edits - 1):
                    parent = chooser.choice(ids)
                    ids.append(repo.add_node(NewNode(conversation.id, parent, f"{number}-{edit}", "edit", USED, 1.0)).id)
                    if edit % 2:
                        repo.move_head(conversation.id, chooser.choice(ids))
                made[conversation.id] = ids
            except BaseException as error:  # collected and reported below, with the thread's traceback
                errors.append(error)

        workers = [threading.Thread(target=person, args=(n,)) for n in range(threads_count)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

        assert errors == []
        assert len(shared_ids) == 1
        assert len(made) == threads_count
        for conversation_id, ids in made.items():
            nodes = {node_id: repo.node(node_id) for node_id in ids}
            assert all(node.conversation_id == conversation_id for node in nodes.values())
            roots = [node for node in nodes.values() if node.parent_id is None]
            assert len(roots) == 1
            for node in nodes.values():
                path = repo.path(node.id)  # single parent each, so the path is the chain; it must end at the root
                assert path[0] == roots[0] and path[-1] == node
                assert len({step.id for step in path}) == len(path)  # acyclic
            head_id = repo.conversation_by_id(conversation_id).head_id
            assert head_id in nodes
            visits = [node.visit for node in nodes.values()]
            assert len(set(visits)) == len(visits)
        if backend.engine is not None:
            with backend.engine.connect() as connection:
                assert connection.scalar(select(func.count()).select_from(NodeRow)) == threads_count * edits


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrations_build_exactly_the_models_schema(database, tmp_path, request):
    url = _sqlite_url(tmp_path) if database == "sqlite" else request.getfixturevalue("postgres_url")
    upgrade(url)
    upgrade(url)  # a second run finds nothing to do
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
            if database == "sqlite":
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        engine.dispose()


def test_sqlite_bookkeeping_writes_skip_the_fsync_and_every_other_write_waits_for_it(tmp_path):
    from storage.database import bookkeeping

    engine = make_engine(_sqlite_url(tmp_path))
    try:
        for which, expected in ((engine, 2), (bookkeeping(engine), 1), (engine, 2)):  # FULL, NORMAL, FULL again
            with which.begin() as connection:
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == expected
    finally:
        engine.dispose()
