"""In-memory HistoryRepository and ImageStore: faithful fakes of core.ports for tests and throwaway runs.

They validate exactly as the database and file backends do, so code tested against them behaves the same on the
real ones. Each method holds one lock for its whole run, the in-memory equivalent of one transaction.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from core.domain import ChatKey, Conversation, EditParams, NewNode, Node, Region
from storage.retention import expired_nodes


class InMemoryHistoryRepository:
    """The edit trees of every conversation, kept in dictionaries. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conversations: dict[int, Conversation] = {}
        self._ids_by_key: dict[ChatKey, int] = {}
        self._visit_counters: dict[int, int] = {}
        self._nodes: dict[int, Node] = {}
        self._children: dict[int, list[int]] = {}
        self._node_ids = itertools.count(1)  # never reused, even after a purge
        self._offers: dict[int, list[int]] = {}
        self._held_back: dict[int, tuple[int, str]] = {}
        self._used_at: dict[int, datetime] = {}  # node id -> last used, for retention
        self._stored_bytes: dict[int, int] = {}  # node id -> what its picture takes in the image store
        self._reference_bytes: dict[str, int] = {}  # reference picture digest -> what it takes there
        self._pending: dict[int, tuple[int, str]] = {}  # conversation id -> its edit waiting or running

    def conversation(self, key: ChatKey) -> Conversation:
        """The conversation of this person in this chat, created on first use with default settings."""
        with self._lock:
            existing = self._ids_by_key.get(key)
            if existing is not None:
                return self._conversations[existing]
            conversation = Conversation(id=len(self._conversations) + 1, key=key, head_id=None, settings=EditParams())
            self._conversations[conversation.id] = conversation
            self._ids_by_key[key] = conversation.id
            self._visit_counters[conversation.id] = 0
            return conversation

    def conversation_by_id(self, conversation_id: int) -> Conversation | None:
        with self._lock:
            return self._conversations.get(conversation_id)

    def node(self, node_id: int) -> Node | None:
        with self._lock:
            return self._nodes.get(node_id)

    def children(self, node_id: int) -> list[Node]:
        """Direct children, oldest first."""
        with self._lock:
            return [self._nodes[child] for child in self._children.get(node_id, [])]

    def path(self, node_id: int) -> list[Node]:
        """From the root down to this node, inclusive; empty for an unknown node."""
        with self._lock:
            path: list[Node] = []
            current = self._nodes.get(node_id)
            while current is not None:
                path.append(current)
                current = self._nodes.get(current.parent_id) if current.parent_id is not None else None
            path.reverse()
            return path

    def tree(self, node_id: int) -> list[Node]:
        """Every node of node_id's tree, oldest first; empty for an unknown node."""
        with self._lock:
            node = self._nodes.get(node_id)
            if node is None:
                return []
            while node.parent_id is not None:
                node = self._nodes[node.parent_id]
            found, waiting = [], [node.id]
            while waiting:
                current = waiting.pop()
                found.append(self._nodes[current])
                waiting += self._children.get(current, [])
            return sorted(found, key=lambda each: each.id)

    def roots(self, conversation_id: int) -> list[Node]:
        """The roots of the conversation's trees, newest first."""
        with self._lock:
            own = [node for node in self._nodes.values()
                   if node.conversation_id == conversation_id and node.parent_id is None]
            return sorted(own, key=lambda node: node.id, reverse=True)

    def add_node(self, new: NewNode) -> Node:
        """Record a node and (unless new.make_head is False) make it the head.

        ValueError for an unknown conversation or a foreign parent."""
        with self._lock:
            self._require_conversation(new.conversation_id)
            if new.parent_id is not None:
                self._require_own_node(new.conversation_id, new.parent_id, "parent")
            visit = self._next_visit(new.conversation_id) if new.make_head else 0
            node = Node(
                id=next(self._node_ids),
                conversation_id=new.conversation_id,
                parent_id=new.parent_id,
                image_hash=new.image_hash,
                instruction=new.instruction,
                params=new.params,
                seconds=new.seconds,
                created_at=datetime.now(UTC),
                visit=visit,
                translation=new.translation,
                region=new.region,
                source=new.source,
                inputs=tuple(new.inputs),
            )
            self._nodes[node.id] = node
            self._stored_bytes[node.id] = new.stored_bytes
            if new.parent_id is not None:
                self._children.setdefault(new.parent_id, []).append(node.id)
            if new.make_head:
                self._set_head(new.conversation_id, node.id)
            return node

    def move_head(self, conversation_id: int, node_id: int | None) -> Conversation:
        """Make node_id the head (None: no current image) and raise its visit counter.

        ValueError for an unknown conversation or a node of another conversation.
        """
        with self._lock:
            self._require_conversation(conversation_id)
            if node_id is not None:
                node = self._require_own_node(conversation_id, node_id, "node")
                self._nodes[node_id] = replace(node, visit=self._next_visit(conversation_id))
                self._used_at[node_id] = datetime.now(UTC)
            return self._set_head(conversation_id, node_id)

    def touch(self, node_id: int) -> bool:
        """Count the node as used now; False if there is no such node."""
        with self._lock:
            if node_id not in self._nodes:
                return False
            self._used_at[node_id] = datetime.now(UTC)
            return True

    def save_settings(self, conversation_id: int, settings: EditParams) -> Conversation:
        """Store the conversation's edit settings; BadParams if they are out of range."""
        settings.validated()
        with self._lock:
            conversation = replace(self._require_conversation(conversation_id), settings=settings)
            self._conversations[conversation_id] = conversation
            return conversation

    def save_references(self, conversation_id: int, digests: Sequence[str]) -> Conversation:
        """Keep the reference pictures (image digests, in order) waiting for the next edit; empty clears them."""
        with self._lock:
            conversation = replace(self._require_conversation(conversation_id), references=tuple(digests))
            self._conversations[conversation_id] = conversation
            return conversation

    def save_region(self, conversation_id: int, region: Region | None) -> Conversation:
        """Store the region instructions edit (None: the whole picture)."""
        with self._lock:
            conversation = replace(self._require_conversation(conversation_id), region=region)
            self._conversations[conversation_id] = conversation
            return conversation

    def save_offer(self, conversation_id: int, node_ids: Sequence[int]) -> None:
        """Remember the cells of the grid just offered, in order (replacing the previous grid)."""
        with self._lock:
            self._require_conversation(conversation_id)
            for node_id in node_ids:
                self._require_own_node(conversation_id, node_id, "cell")
            self._offers[conversation_id] = list(node_ids)

    def offer(self, conversation_id: int) -> list[int]:
        """The cells of the last grid offered; empty if none (or an unknown conversation)."""
        with self._lock:
            return list(self._offers.get(conversation_id, []))

    def hold_back(self, conversation_id: int, parent_id: int, instruction: str) -> None:
        """Keep an instruction a hint held back, with the node it was for, until take_held_back."""
        with self._lock:
            self._require_conversation(conversation_id)
            self._require_own_node(conversation_id, parent_id, "parent")
            self._held_back[conversation_id] = (parent_id, instruction)

    def take_held_back(self, conversation_id: int) -> tuple[int, str] | None:
        """The held-back (parent id, instruction), forgotten as it is returned; None if there is none."""
        with self._lock:
            self._require_conversation(conversation_id)
            return self._held_back.pop(conversation_id, None)

    def note_edit(self, conversation_id: int, parent_id: int, instruction: str) -> None:
        """Keep the conversation's edit while it waits or runs in this process (replacing any earlier one)."""
        with self._lock:
            self._require_conversation(conversation_id)
            self._require_own_node(conversation_id, parent_id, "parent")
            self._pending[conversation_id] = (parent_id, instruction)

    def forget_edit(self, conversation_id: int) -> None:
        """The conversation's edit ended: nothing to offer again."""
        with self._lock:
            self._require_conversation(conversation_id)
            self._pending.pop(conversation_id, None)

    def take_interrupted_edits(self) -> list[tuple[Conversation, int, str]]:
        """Every kept edit as (conversation, parent id, instruction), forgotten as returned; one whose parent is
        gone (purged) is forgotten without being listed."""
        with self._lock:
            pending, self._pending = self._pending, {}
            return [(self._conversations[conversation_id], parent_id, instruction)
                    for conversation_id, (parent_id, instruction) in sorted(pending.items())
                    if parent_id in self._nodes]

    def referenced_images(self) -> set[str]:
        """Every image hash some node refers to, for the image store's sweep."""
        with self._lock:
            found = {node.image_hash for node in self._nodes.values()}
            for node in self._nodes.values():
                found.update(node.inputs)
            for conversation in self._conversations.values():
                found.update(conversation.references)
            return found

    def purge_before(self, cutoff: datetime) -> int:
        """Delete the trees made and last used before cutoff (storage/retention.py), one conversation at a time;
        clear heads that pointed into them. Returns how many nodes were deleted."""
        removed = 0
        for conversation_id in list(self._conversations):
            with self._lock:
                own = [node for node in self._nodes.values() if node.conversation_id == conversation_id]
                last_use = ((node.id, node.parent_id, max(node.created_at, self._used_at.get(node.id, node.created_at)))
                            for node in own)
                doomed = expired_nodes(last_use, cutoff)
                if self._conversations[conversation_id].head_id in doomed:
                    self._set_head(conversation_id, None)
                if set(self._offers.get(conversation_id, ())) & doomed:
                    del self._offers[conversation_id]
                if self._held_back.get(conversation_id, (None,))[0] in doomed:
                    del self._held_back[conversation_id]
                if self._pending.get(conversation_id, (None,))[0] in doomed:
                    del self._pending[conversation_id]
                for node_id in doomed:
                    del self._nodes[node_id]
                    self._children.pop(node_id, None)
                    self._used_at.pop(node_id, None)
                    del self._stored_bytes[node_id]
                removed += len(doomed)
        return removed

    def note_reference(self, digest: str, stored_bytes: int) -> None:
        with self._lock:
            self._reference_bytes[digest] = stored_bytes

    def stored_bytes(self, person: str) -> int:
        """What the pictures of a person's nodes and the reference pictures they use take in the image store,
        across their chats (a picture counted once)."""
        with self._lock:
            sizes: dict[str, int] = {}
            references = set()
            for node in self._nodes.values():
                if self._conversations[node.conversation_id].key.person == person:
                    sizes[node.image_hash] = max(sizes.get(node.image_hash, 0), self._stored_bytes[node.id])
                    references.update(node.inputs)
            for conversation in self._conversations.values():
                if conversation.key.person == person:
                    references.update(conversation.references)
            for digest in references - sizes.keys():
                sizes[digest] = self._reference_bytes.get(digest, 0)
            return sum(sizes.values())

    def edit_counts(self, since: datetime, limit: int) -> list[tuple[str, int]]:
        """People ("platform:user_id") by the edits they made since `since`, most first (ties by name), at most limit."""
        with self._lock:
            counts = Counter(
                self._conversations[node.conversation_id].key.person
                for node in self._nodes.values()
                if node.instruction is not None and node.created_at >= since
            )
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]

    # Helpers below expect the lock to be held.

    def _require_conversation(self, conversation_id: int) -> Conversation:
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            raise ValueError(f"no conversation {conversation_id}")
        return conversation

    def _require_own_node(self, conversation_id: int, node_id: int, role: str) -> Node:
        node = self._nodes.get(node_id)
        if node is None or node.conversation_id != conversation_id:
            raise ValueError(f"{role} {node_id} is not a node of conversation {conversation_id}")
        return node

    def _next_visit(self, conversation_id: int) -> int:
        self._visit_counters[conversation_id] += 1
        return self._visit_counters[conversation_id]

    def _set_head(self, conversation_id: int, node_id: int | None) -> Conversation:
        conversation = replace(self._conversations[conversation_id], head_id=node_id)
        self._conversations[conversation_id] = conversation
        return conversation




class InMemoryImageStore:
    """Content-addressed image bytes in a dictionary. Thread-safe.

    grace_seconds: sweep spares images put more recently than this, like the file store does.
    """

    def __init__(self, grace_seconds: float = 3600.0) -> None:
        self.grace_seconds = grace_seconds
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}
        self._stored_at: dict[str, float] = {}

    def put(self, data: bytes) -> str:
        """Store the bytes and return their SHA-256 hex digest; storing the same bytes again changes nothing."""
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            if digest not in self._blobs:
                self._blobs[digest] = bytes(data)
                self._stored_at[digest] = time.monotonic()
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes for a digest; KeyError if unknown."""
        with self._lock:
            try:
                return self._blobs[digest]
            except KeyError:
                raise KeyError(digest) from None

    def exists(self, digest: str) -> bool:
        with self._lock:
            return digest in self._blobs

    def sweep(self, keep: set[str]) -> int:
        """Delete images not in keep that are older than the grace period; return how many were removed."""
        cutoff = time.monotonic() - self.grace_seconds
        with self._lock:
            doomed = [d for d, stored in self._stored_at.items() if d not in keep and stored <= cutoff]
            for digest in doomed:
                del self._blobs[digest]
                del self._stored_at[digest]
            return len(doomed)
