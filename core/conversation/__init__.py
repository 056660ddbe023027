"""The conversation: the engine that routes every message, and the command groups it routes to (one file each)."""
