"""The names a deployment (one `queue_name`, prefix P) uses in Redis, shared by front-ends and workers:

- P:jobs:MODEL, the stream of the job ids (Taskiq's task TASK_NAME) of one enabled model, read by the workers that
  serve it; P:serving:MODEL, a sorted set of those workers, each scored by when its presence expires;
- P:waiting, a sorted set of the jobs not started yet, by submission time (the queue's room), and P:waiting:MODEL,
  those of one model (queue positions: a job waits only for jobs of its model, the ones its workers take);
- P:events:FRONTEND, the pub/sub channel of a front-end's jobs (started, step, finished), and P:moved, told when a job
  leaves the waiting set (positions changed);
- P:cancel:JOB, a flag the running worker checks every step; P:paused, set while an admin paused the queue;
- P:frontend:NAME, the lease of the live front-end of that name (bot.distributed.identity);
- P:worker:NAME, the lease of the live worker of that name (bot.distributed.upkeep).
"""

from __future__ import annotations

from dataclasses import dataclass

TASK_NAME = "editbot.edit"
CANCEL_FLAG_SECONDS = 24 * 3600
"""A cancel flag outlives any edit, then expires by itself."""


@dataclass(frozen=True)
class Keys:
    """The Redis names of one deployment (one `queue_name`)."""

    prefix: str

    def jobs(self, model: str) -> str:
        return f"{self.prefix}:jobs:{model}"

    def serving(self, model: str) -> str:
        return f"{self.prefix}:serving:{model}"

    @property
    def waiting(self) -> str:
        return f"{self.prefix}:waiting"

    def waiting_for(self, model: str) -> str:
        return f"{self.prefix}:waiting:{model}"

    def waiting_sets(self, model: str) -> tuple[str, str]:
        """Both sets a waiting job of `model` is in: the queue's room, and its place in its model's line."""
        return self.waiting, self.waiting_for(model)

    @property
    def moved(self) -> str:
        return f"{self.prefix}:moved"

    def events(self, frontend: str) -> str:
        return f"{self.prefix}:events:{frontend}"

    def cancel(self, job_id: str) -> str:
        return f"{self.prefix}:cancel:{job_id}"

    def frontend(self, name: str) -> str:
        return f"{self.prefix}:frontend:{name}"

    def worker(self, name: str) -> str:
        return f"{self.prefix}:worker:{name}"

    @property
    def paused(self) -> str:
        return f"{self.prefix}:paused"
