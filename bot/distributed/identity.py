"""A front-end's identity in the job table and on its event channel, unique by construction.

Two front-ends under one name would hear each other's events and re-attach each other's jobs. So a name is held
with a lease in Redis (P:frontend:NAME, renewed while the process lives, gone LEASE_SECONDS after it died), and:

- the default name is the adapter, the host and a random id kept in the data folder (so a restarted process finds
  its jobs again); if another live process holds it (two terminal chats on one data folder), the next free
  NAME-2, NAME-3... is taken;
- a name set in EDITBOT_FRONTEND_ID is waited for while its lease runs out (the previous process of that name just
  died), then refused in one line if still held: two processes were given one name.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import time
from pathlib import Path

from redis.asyncio import Redis

from bot.distributed.keys import Keys
from bot.distributed.outage import outage_of
from core.errors import UserError

LEASE_SECONDS = 15
"""How long a front-end's name stays held after its process stopped renewing it (it died)."""
MOST_SIBLINGS = 50


def default_frontend_id(adapter: str, data_dir: Path) -> str:
    """adapter@host-ID, ID a random id created once per data folder."""
    path = data_dir / "frontend-id"
    try:
        suffix = path.read_text().strip()
    except FileNotFoundError:
        suffix = ""
    if not re.fullmatch(r"[0-9a-f]{8}", suffix):
        suffix = secrets.token_hex(4)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(suffix + "\n")
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:24] or "host"
    return f"{adapter}@{host}-{suffix}"


class FrontendLease:
    """The lease on one front-end name. `take()` picks and holds the name; `renew()` keeps it (call well within
    LEASE_SECONDS); `release()` frees it at a clean stop."""

    def __init__(self, redis: Redis, keys: Keys, wanted: str, *, exact: bool,
                 lease_seconds: int = LEASE_SECONDS) -> None:
        self._redis, self._keys, self.wanted, self.exact = redis, keys, wanted, exact
        self.lease_seconds = lease_seconds
        self._token = secrets.token_hex(8)
        self.name = wanted
        self._free_since: dict[str, float] = {}  # sibling names seen free, since when (time.monotonic)

    async def take(self) -> str:
        if not self.exact:
            for name in self._siblings():
                if await self._hold(name):
                    return name
            raise UserError(f"Too many front-ends run as {self.wanted}: set EDITBOT_FRONTEND_ID for each.")
        deadline = time.monotonic() + self.lease_seconds + 1
        while not await self._hold(self.wanted):
            if time.monotonic() > deadline:
                raise UserError(f"Another front-end is running as {self.wanted}: give each its own "
                                "EDITBOT_FRONTEND_ID.")
            await asyncio.sleep(0.5)
        return self.wanted

    async def _hold(self, name: str) -> bool:
        if await self._redis.set(self._keys.frontend(name), self._token, nx=True, ex=self.lease_seconds):
            self.name = name
            return True
        return False

    async def renew(self) -> None:
        """Extend the lease; take it again if it ran out meanwhile (Redis was out) and nobody else took it."""
        key = self._keys.frontend(self.name)
        holder = await self._redis.get(key)
        if holder is None:
            await self._redis.set(key, self._token, nx=True, ex=self.lease_seconds)
        elif holder.decode() == self._token:
            await self._redis.expire(key, self.lease_seconds)

    async def abandoned(self) -> list[str]:
        """The sibling names (NAME, NAME-2... but this one's; none for an exact name) seen free for a whole lease by
        the calls so far (make one each renewal): their front-ends stopped, and a front-end restarted before its
        predecessor's lease ran out, running as NAME-2, takes on their jobs. Free that long, not merely free: a
        Redis restarted without its data drops every lease at once, and live front-ends take theirs again within a
        renewal."""
        if self.exact:
            return []
        names = [name for name in self._siblings() if name != self.name]
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(self._keys.frontend(name))
            held = await pipe.execute()
        now = time.monotonic()
        for name, taken in zip(names, held):
            if taken:
                self._free_since.pop(name, None)
            else:
                self._free_since.setdefault(name, now)
        return [name for name in names if now - self._free_since.get(name, now) >= self.lease_seconds]

    def _siblings(self) -> list[str]:
        return [self.wanted if number == 1 else f"{self.wanted}-{number}" for number in range(1, MOST_SIBLINGS + 1)]

    async def release(self) -> None:
        """Free the name at a clean stop; with Redis out, the lease runs out by itself."""
        key = self._keys.frontend(self.name)
        try:
            if (await self._redis.get(key) or b"").decode() == self._token:
                await self._redis.delete(key)
        except Exception as error:
            if outage_of(error) is None:
                raise
