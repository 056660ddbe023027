"""The HistoryRepository contract for conversations and their trees of pictures: roots, children, paths, the head
and its visits, and what is refused. The in-memory fake, SQLite and PostgreSQL must behave alike (the backends:
tests/contract/conftest.py).
"""

from __future__ import annotations

from datetime import UTC

import pytest

from core.domain import ChatKey, EditParams, NewNode, Translation
from tests.support.history_backends import ALICE, BOB, USED


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

    def test_unknown_ids_give_none_or_nothing(self, repo):
        repo.conversation(ALICE)
        assert repo.conversation_by_id(987_654) is None
        assert repo.node(987_654) is None
        assert repo.children(987_654) == []
        assert repo.path(987_654) == []
