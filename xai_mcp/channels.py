"""The process's connections to xAI: a lane for free calls, and lanes for paid work and streams.

One HTTP/2 connection carries a limited number of streams at once: the server announces the
limit (often 100) and refuses streams beyond it (REFUSED_STREAM), and gRPC queues further calls
behind the running ones. On one shared connection, 150 streamed chats made a free
`tokenize_text` wait 29.6 s behind them (measured against the emulator with a limit of 100).
So calls are split by what they hold a connection for:

- free unary calls (reads, polls) take the *short* lane, a connection of their own that long
  streams never fill, so they answer in milliseconds whatever else runs;
- paid work and streams take the least loaded of the *work* lanes, enough of them that the
  paid calls allowed at once (`XAI_MCP_MAX_PAID_INFLIGHT`) stay under `STREAMS_PER_LANE` each.

Every lane is its own channel with its own subchannel pool (`grpc.use_local_subchannel_pool`):
channels with equal arguments would otherwise share one subchannel, hence one connection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio

# Streams we put on one work lane at most, by design: half of the 100 that HTTP/2 servers
# commonly allow (RFC 9113 recommends at least 100), leaving room for a server's lower limit.
STREAMS_PER_LANE = 50
# Each lane's own subchannel pool, so that every lane is its own HTTP/2 connection.
OWN_CONNECTION: tuple[str, Any] = ("grpc.use_local_subchannel_pool", 1)


@dataclass(eq=False)
class Lane:
    """One channel, the calls running on it now, and its multi-callables (made once per path)."""

    channel: grpc.aio.Channel
    name: str
    inflight: int = 0
    callables: dict[str, Any] = field(default_factory=dict)


class ChannelPool:
    """The short lane and the work lanes (see the module docstring). Close it once, at shutdown."""

    def __init__(self, short: grpc.aio.Channel, work: Sequence[grpc.aio.Channel] = ()) -> None:
        self.short = Lane(short, "short")
        # With no work lanes (a single channel, as tests and `doctor` use) everything shares one.
        self.work = [Lane(channel, f"work-{index}") for index, channel in enumerate(work)] or [self.short]

    @classmethod
    def open(
        cls, open_channel: Callable[[tuple[tuple[str, Any], ...]], grpc.aio.Channel], paid_inflight: int
    ) -> ChannelPool:
        """Open the lanes with `open_channel(extra_options)`: one short, enough work lanes for `paid_inflight`."""
        count = max(1, math.ceil(paid_inflight / STREAMS_PER_LANE))
        short = open_channel((OWN_CONNECTION,))
        return cls(short, [open_channel((OWN_CONNECTION,)) for _ in range(count)])

    @property
    def lanes(self) -> list[Lane]:
        return [self.short, *(lane for lane in self.work if lane is not self.short)]

    def pick(self, *, long: bool) -> Lane:
        """The lane for a call: the short lane, or the least loaded work lane (the first on a tie)."""
        if not long:
            return self.short
        return min(self.work, key=lambda lane: lane.inflight)

    @contextmanager
    def using(self, lane: Lane) -> Iterator[Lane]:
        """Count a call on `lane` while it runs (what `pick` balances on)."""
        lane.inflight += 1
        try:
            yield lane
        finally:
            lane.inflight -= 1

    def connect(self) -> None:
        """Start connecting every lane now (DNS, TCP, TLS), in gRPC's threads; nothing waits."""
        for lane in self.lanes:
            lane.channel.get_state(try_to_connect=True)

    async def close(self) -> None:
        for lane in self.lanes:
            await lane.channel.close(None)
