"""The HistoryRepository contract under concurrent writers: none fails and every tree stays valid, in memory, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import threading

from sqlalchemy import func, select

from core.domain import ChatKey, NewNode
from storage.models import NodeRow
from tests.support.history_backends import USED


class TestHistoryRepositoryContract:
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
