"""How many calls can one relay process carry? Prints figures, never passes or fails.

N concurrent calls; each call's family and prisoner are aiortc peers in this process
sending 640×480 numbered frames at 15 fps (plus silence) over loopback to relay
process(es) running the real RelayCall (gate tracks, decode + re-encode). Relays are
separate processes so their CPU can be measured alone (/proc/<pid>/stat).

Figures per N: relay CPU per call (% of one core), frames delivered (received live
frames / frames sent), end-to-end latency p50/p95 (sender → relay → receiver, which
includes the peers' own encode/decode: an upper bound on what the relay adds).

    .venv/bin/python bench/relay.py                 # N = 1, 2, 4, 6; one relay
    .venv/bin/python bench/relay.py --relays 2 --calls 2,4,6,8 --seconds 8

Note: the synthetic peers also encode and decode video, in this process; on a small
machine they compete with the relay for CPU, so figures are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purplevisits.settings")

TICKS = os.sysconf("SC_CLK_TCK")


def _relay_process(port_queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import django

    django.setup()
    from calls.relay.call import RelayCall

    calls: dict[str, RelayCall] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads(await reader.readline())
        relay_call = calls.get(request["call_id"])
        if relay_call is None:
            relay_call = calls[request["call_id"]] = RelayCall(request["call_id"])
            relay_call.apply_state({"status": "live"})
        sdp, _tracks = await relay_call.offer(
            role=request["role"], channel=request["channel"], sdp=request["sdp"]
        )
        writer.write(json.dumps({"sdp": sdp}).encode() + b"\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=2**20)
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _offer(port: int, call_id: str, role: str, sdp: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(
        json.dumps({"call_id": call_id, "role": role, "channel": role, "sdp": sdp}).encode() + b"\n"
    )
    await writer.drain()
    answer = json.loads(await reader.readline())
    writer.close()
    return str(answer["sdp"])


async def run_n(n: int, ports: list[int], pids: list[int], seconds: float) -> dict[str, float]:
    from calls.relay.synthetic import SyntheticPeer

    peers = []
    for i in range(n):
        call_id = uuid.uuid4().hex
        family, prisoner = SyntheticPeer("family"), SyntheticPeer("prisoner")
        family.other_track, prisoner.other_track = prisoner.video, family.video
        port = ports[i % len(ports)]
        for peer in (family, prisoner):
            await peer.answer(await _offer(port, call_id, peer.side, await peer.offer()))
        peers += [family, prisoner]
    await asyncio.sleep(3)  # connect and settle
    for peer in peers:
        peer.received.kinds.clear()
        peer.received.latencies.clear()
        assert peer.video is not None
        peer.video.sent.clear()
    cpu_before = sum(_cpu_seconds(pid) for pid in pids)
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu_before
    sent = sum(len(p.video.sent) for p in peers if p.video is not None)
    delivered = sum(p.received.kinds.get(p.other_track.side, 0) for p in peers if p.other_track)
    latencies = sorted(x for p in peers for x in p.received.latencies)
    for peer in peers:
        await peer.close()
    await asyncio.sleep(1)
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    p95 = latencies[int(len(latencies) * 0.95)] * 1000 if latencies else float("nan")
    return {
        "calls": n,
        "cpu_per_call": 100 * cpu / elapsed / n,
        "delivered": delivered / sent if sent else 0.0,
        "p50": p50,
        "p95": p95,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default="1,2,4,6", help="comma-separated N values")
    parser.add_argument("--relays", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    import django

    django.setup()

    context = multiprocessing.get_context("spawn")
    best = 0
    print(f"relays={args.relays} seconds={args.seconds} cores={os.cpu_count()}")
    print(f"{'N':>3} {'relay CPU/call':>15} {'delivered':>10} {'p50 ms':>8} {'p95 ms':>8}")
    for n in [int(x) for x in args.calls.split(",")]:
        queue = context.Queue()
        processes = [
            context.Process(target=_relay_process, args=(queue,), daemon=True)
            for _ in range(args.relays)
        ]
        for process in processes:
            process.start()
        ports = [queue.get(timeout=60) for _ in processes]
        try:
            result = asyncio.run(run_n(n, ports, [p.pid for p in processes if p.pid], args.seconds))
        finally:
            for process in processes:
                process.terminate()
                process.join(5)
        ok = result["delivered"] >= 0.95 and result["p95"] <= 250
        if ok:
            best = max(best, n)
        print(
            f"{n:>3} {result['cpu_per_call']:>14.1f}% {result['delivered']:>9.1%} "
            f"{result['p50']:>8.0f} {result['p95']:>8.0f} {'ok' if ok else 'over'}"
        )
    print(f"largest N with >=95% delivered and p95 <= 250 ms: {best} (relays={args.relays})")


if __name__ == "__main__":
    main()
