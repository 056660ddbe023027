"""What results and lists say about a node: the caption under a result, and a node in a few words (/history, compare,
grids). Instructions are quoted as the model got them, except in /history, which lists the person's own words; a
very long one is shortened here (all of it is in /info), so no caption or list line is one instruction long."""

from __future__ import annotations

from core.conversation.choices import describe
from core.domain import Node

# Exact operations' captions (core/conversation/exact.py does them); here because every caption is made here.
EXACT_CAPTIONS = {
    "rotate 90": "Rotated 90° clockwise",
    "rotate 180": "Rotated 180°",
    "rotate 270": "Rotated 270° clockwise",
    "flip h": "Flipped left to right",
    "flip v": "Flipped top to bottom",
    "crop square": "Cropped to a square",
}

CAPTION_INSTRUCTION_CHARS = 300
"""More than CLIP's 75 tokens of ordinary English take: only an instruction the model could not read whole is cut."""
SHORT_INSTRUCTION_CHARS = 80
"""A line of /history or a grid's title."""


def quoted(text: str, limit: int = CAPTION_INSTRUCTION_CHARS) -> str:
    """“text”, its end cut off with an ellipsis past `limit` characters."""
    return f"“{text if len(text) <= limit else text[:limit - 1].rstrip() + '…'}”"


def caption(node: Node) -> str:
    """What a result says under it: the instruction (the English the model was given, and from which language) and
    everything needed to reproduce it."""
    if node.instruction is None:
        return "Original photo"
    if node.params is None:
        return f"{EXACT_CAPTIONS.get(node.instruction, node.instruction)} (exact, no model)"
    source = f" (from {node.translation.language})" if node.translation else ""
    where = f" ({node.region.describe()})" if node.region is not None else ""
    pictures = f" (with {len(node.inputs) + 1} pictures)" if node.inputs else ""
    return f"{quoted(node.instruction)}{where}{source}{pictures}\n{describe(node.params)}{took(node.seconds)}"


def took(seconds: float | None) -> str:
    """' · 2.3 s' for a caption; very short times are not rounded to a misleading '0.0 s'."""
    if seconds is None:
        return ""
    return f" · {seconds:.1f} s" if seconds >= 0.1 else " · under 0.1 s"


def short(node: Node, *, as_typed: bool = False, bare: bool = False) -> str:
    """A node in a few words (/history, compare): a model edit names its model when it is not the default, and its
    reference pictures. as_typed: a translated instruction in the person's own words (/history lists what they
    typed), the English after it as `translated()` says. bare: the words without quotation marks (a picture's own
    caption, as on the /history sheet)."""
    if node.instruction is None:
        return "original photo"
    if node.params is None:
        return f"{node.instruction} (exact)"
    notes = [node.params.model] if node.params.model else []
    if node.inputs:
        notes.append(f"+{len(node.inputs)} reference picture{'s' if len(node.inputs) > 1 else ''}")
    words = node.translation.original if as_typed and node.translation else node.instruction
    words = quoted(words, SHORT_INSTRUCTION_CHARS)
    return (words[1:-1] if bare else words) + (f" ({', '.join(notes)})" if notes else "")


def translated(node: Node) -> str:
    """' (in English: “…”)' after a translated instruction listed as typed; '' for any other node."""
    if node.translation is None:
        return ""
    return f" (in English: {quoted(node.instruction, SHORT_INSTRUCTION_CHARS)})"
