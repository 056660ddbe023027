"""The HistoryRepository contract for what a conversation keeps beside its tree: settings, the region, the edit in
progress, the last grid offered and a held-back instruction; alike in memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from core.domain import EditParams, NewNode, Region
from core.errors import BadParams
from tests.support.history_backends import ALICE, BOB, USED


class TestHistoryRepositoryContract:
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
