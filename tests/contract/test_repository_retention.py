"""The HistoryRepository contract over time: which pictures are referenced, purging old trees, what counts as use,
and the bytes and edits counted per person; alike in memory, SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from core.domain import ChatKey, NewNode
from tests.support.history_backends import ALICE, BOB, USED


def _a_moment_between() -> datetime:
    """A cutoff strictly after everything recorded so far and strictly before anything recorded next."""
    time.sleep(0.002)
    moment = datetime.now(UTC)
    time.sleep(0.002)
    return moment


class TestHistoryRepositoryContract:
    def test_referenced_images_are_every_nodes_hash(self, repo):
        assert repo.referenced_images() == set()
        alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
        root = repo.add_node(NewNode(alice.id, None, "x", None, None, None))
        repo.add_node(NewNode(alice.id, root.id, "y", "edit", USED, 1.0))
        repo.add_node(NewNode(alice.id, root.id, "x", "same picture again", USED, 1.0))
        repo.add_node(NewNode(bob.id, None, "z", None, None, None))
        assert repo.referenced_images() == {"x", "y", "z"}

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

    def test_purge_with_nothing_old_changes_nothing(self, repo):
        conversation = repo.conversation(ALICE)
        cutoff = _a_moment_between()
        root = repo.add_node(NewNode(conversation.id, None, "h0", None, None, None))
        assert repo.purge_before(cutoff) == 0
        assert repo.node(root.id) == root and repo.conversation(ALICE).head_id == root.id

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
