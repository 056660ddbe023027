"""The HistoryRepository contract for models (0011_models): a conversation's model, family values and waiting
reference pictures, a node's model, weights source and reference pictures; alike in memory, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.domain import EditParams, NewNode
from core.editing.families import family_named
from tests.support.history_backends import ALICE, BOB, USED


def qwen_settings() -> EditParams:
    family = family_named("qwen-edit")
    params = family.with_value(family.defaults(), "negative_prompt", "Blurry, LOW quality")
    params = family.with_value(params, "true_cfg_scale", 5.5)
    return replace(family.with_value(params, "seed", 7), model="qwen")


class TestModelStorage:
    def test_a_conversation_keeps_its_model_family_and_family_values(self, repo):
        conversation = repo.conversation(ALICE)
        assert conversation.settings == EditParams() and conversation.references == ()
        settings = qwen_settings()
        saved = repo.save_settings(conversation.id, settings)
        assert saved.settings == settings
        read = repo.conversation(ALICE).settings
        assert read == settings and read.extra("negative_prompt") == "Blurry, LOW quality"  # case kept
        assert (read.family, read.model) == ("qwen-edit", "qwen")
        assert repo.conversation(BOB).settings == EditParams()
        assert repo.save_settings(conversation.id, EditParams()).settings == EditParams()  # back to the default

    def test_reference_pictures_wait_in_order_and_are_cleared(self, repo):
        conversation = repo.conversation(ALICE)
        saved = repo.save_references(conversation.id, ["hat", "scarf"])
        assert saved.references == ("hat", "scarf")
        assert repo.conversation_by_id(conversation.id).references == ("hat", "scarf")
        assert repo.conversation(BOB).references == ()
        assert repo.referenced_images() == {"hat", "scarf"}  # the sweep keeps them until the edit takes them
        assert repo.save_references(conversation.id, []).references == ()
        assert repo.conversation(ALICE).references == ()
        with pytest.raises(ValueError):
            repo.save_references(987_654, ["hat"])

    def test_a_node_records_its_model_source_values_and_reference_pictures(self, repo):
        conversation = repo.conversation(ALICE)
        root = repo.add_node(NewNode(conversation.id, None, "root"))
        settings = qwen_settings()
        edit = repo.add_node(NewNode(conversation.id, root.id, "out", "put the hat from picture 2 on her", settings,
                                     1.0, source="Qwen/Qwen-Image-Edit-2511", inputs=("hat", "scarf")))
        plain = repo.add_node(NewNode(conversation.id, root.id, "plain", "make it snow", USED, 1.0))
        for node in (edit, repo.node(edit.id)):
            assert node.params == settings and node.source == "Qwen/Qwen-Image-Edit-2511"
            assert node.inputs == ("hat", "scarf")
        assert repo.node(plain.id).params == USED and (plain.source, plain.inputs) == (None, ())
        assert (repo.node(root.id).source, repo.node(root.id).inputs) == (None, ())
        assert repo.referenced_images() == {"root", "out", "plain", "hat", "scarf"}
        assert [child.inputs for child in repo.children(root.id)] == [("hat", "scarf"), ()]
