"""Reference pictures (/ref) count toward a person's storage, on every HistoryRepository: once each, whether they
wait for the next edit or an edit (or several, or a grid of them) took them."""

from __future__ import annotations

from core.domain import ChatKey, EditParams, NewNode
from tests.support.history_backends import ALICE, BOB


def test_reference_pictures_count_once_each_for_the_person_who_uses_them(repo):
    alice, bob = repo.conversation(ALICE), repo.conversation(BOB)
    root = repo.add_node(NewNode(alice.id, None, "photo", stored_bytes=1000))
    repo.note_reference("hat", 50)
    repo.note_reference("scarf", 7)
    repo.note_reference("hat", 50)  # the same picture sent again
    repo.save_references(alice.id, ["hat", "scarf"])
    assert repo.stored_bytes(ALICE.person) == 1057

    # An edit takes them, a retry and two grid cells take them again: still once each.
    for _ in range(4):
        repo.add_node(NewNode(alice.id, root.id, "edit", "put the hat on", EditParams(seed=1), 1.0,
                              stored_bytes=300, inputs=("hat", "scarf")))
    repo.save_references(alice.id, [])
    repo.save_references(repo.conversation(ChatKey("telegram", "200", "1")).id, ["hat"])  # Alice elsewhere
    assert repo.stored_bytes(ALICE.person) == 1000 + 300 + 57
    assert repo.stored_bytes(BOB.person) == 0

    repo.save_references(bob.id, ["scarf", "photo"])  # Bob's own use counts for him; a node picture once
    repo.add_node(NewNode(bob.id, None, "photo", stored_bytes=1000))
    assert repo.stored_bytes(BOB.person) == 1007
