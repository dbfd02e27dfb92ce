"""What a call costs the relay, and how many fit a core (issue 18). Prints figures only:
it never passes or fails on time.

N concurrent calls; each call's family and prisoner are aiortc peers in this process
sending 640×480 15 fps VP8 (numbered frames over a real face: Obama on the family's
camera, Biden on the prison laptop's) and a tone, over loopback to relay process(es)
running the real RelayCall. Face checks are ON by default, as in production: each relay
process has the shared face-check pool sized as ``runrelay --processes P`` sizes it
(calls/facecheck/pool.py) and every call a FaceChecker with the production defaults
(an unsaved Establishment's) whose approved faces are the faces sent, attached as
calls/faces.py attaches it but without a database. Any pause it makes is counted as a
false pause (every face shown is approved).

Per N it prints:
- CPU per call, % of one core: relay processes, their face-check workers, both; and
  the calls per process and per core that cost allows (100 / all-in CPU per call);
- delivered: live frames received / frames sent, both directions of every call;
- latency added by the relay p50/p95: sender → relay → receiver minus the same figures
  of N direct peer-to-peer calls (no relay) measured in the same run, so the peers' own
  encode, decode and jitter buffer are taken out;
- keyframe wait after resume: every call paused (both sides see the placeholder) then
  resumed; time until each receiver decodes a live frame again (p50/max);
- the bench process's own CPU (the peers): near 100 % of a core, the peers are the
  bottleneck and the relay figures are pessimistic.
A machine reference first (VP8 decode of a 640×480 frame, a pure-Python loop) so runs on
different hosts compare.

    .venv/bin/python bench/relay.py                       # N = 1, 2, 4; one relay process
    .venv/bin/python bench/relay.py --processes 2 --calls 2,4,6
    .venv/bin/python bench/relay.py --no-face-checks --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purplevisits.settings")

TICKS = os.sysconf("SC_CLK_TCK")
SETTLE_CEILING = 60.0  # seconds for every peer to receive its first frames (a ceiling)
RESUME_CEILING = 30.0
GRACE = 0.5  # seconds a frame may take to arrive and still count as delivered
FACES = {"family": ("obama.jpg", 170, (320, 320)), "prisoner": ("biden.jpg", 170, (320, 320))}


# --- the relay process ---------------------------------------------------------------


def _relay_process(
    port_queue: Any, processes: int, face_checks: bool, approved: dict[str, list[float]]
) -> None:
    import logging

    import django

    django.setup()
    logging.getLogger("calls.facecheck").setLevel(logging.WARNING)
    import numpy as np

    from calls.relay.call import RelayCall

    calls: dict[str, RelayCall] = {}
    checkers: dict[str, Any] = {}
    counts = {"pauses": 0}

    def attach_checker(relay_call: RelayCall) -> None:
        """What calls/faces.py does for a call, with the plan given instead of loaded."""
        from calls.facecheck import FaceChecker, shared_pool
        from establishments.models import Establishment

        async def on_pause(side: str, reason: str, snapshot: bytes, detail: Any) -> None:
            counts["pauses"] += 1
            relay_call.hold()

        async def on_resume(side: str, detail: Any) -> None:
            relay_call.release()

        checker = FaceChecker.for_establishment(
            Establishment(),  # unsaved: the production defaults, no database
            pool=shared_pool(),
            approved_encodings=[np.array(approved["family"])],
            prisoner_encoding=np.array(approved["prisoner"]),
            on_pause=on_pause,
            on_resume=on_resume,
            label=relay_call.call_id,
        )
        for side in checker.sides:

            def offer(frame: Any, side: str = side) -> None:
                if relay_call.status in ("live", "paused"):
                    checker.offer_frame(side, frame)

            relay_call.add_video_observer(side, offer)
        checker.start()
        checkers[relay_call.call_id] = checker

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads(await reader.readline())
        op, call_id = request["op"], request.get("call_id", "")
        reply: dict[str, Any] = {"ok": True}
        if op == "offer":
            relay_call = calls.get(call_id)
            if relay_call is None:
                relay_call = calls[call_id] = RelayCall(call_id)
                relay_call.apply_state({"status": "live"})
                if face_checks:
                    attach_checker(relay_call)
            sdp, _tracks = await relay_call.offer(
                role=request["role"], channel=request["role"], sdp=request["sdp"]
            )
            reply = {"sdp": sdp}
        elif op == "state":
            calls[call_id].apply_state({"status": request["status"]})
        elif op == "close":
            checker = checkers.pop(call_id, None)
            if checker is not None:
                await checker.stop()
            relay_call = calls.pop(call_id, None)
            if relay_call is not None:
                await relay_call.close()
        elif op == "stats":
            workers: list[int] = []
            if face_checks:
                from calls.facecheck import shared_pool

                workers = shared_pool().worker_pids()
            delays = sorted(
                d
                for c in calls.values()
                for peer in c.peers.values()
                for output in peer.outputs
                if output.kind == "video"
                for d in output.forward_delays
            )
            reply = {
                "inside_ms": [
                    1000 * delays[int(len(delays) * q)] if delays else float("nan")
                    for q in (0.5, 0.95)
                ],
                "pid": os.getpid(),
                "workers": workers,
                "pauses": counts["pauses"],
                "checks": sum(len(c.timings) for c in checkers.values()),
            }
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        import signal

        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        if face_checks:
            from calls.facecheck import shared_pool
            from calls.facecheck.pool import set_relay_processes

            set_relay_processes(processes)
            await shared_pool().warm()
        from calls.relay.call import placeholder_texts
        from calls.relay.tracks import warm_placeholders

        await asyncio.to_thread(warm_placeholders, placeholder_texts())  # as RelayServer does
        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=2**20)
        port_queue.put(server.sockets[0].getsockname()[1])
        await stop.wait()
        for call_id in list(calls):
            checker = checkers.pop(call_id, None)
            if checker is not None:
                await checker.stop()
            await calls.pop(call_id).close()
        if face_checks:
            from calls.facecheck import close_shared_pool

            close_shared_pool()

    asyncio.run(main())


# --- the bench process ---------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _ask(port: int, **request: Any) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(json.dumps(request).encode() + b"\n")
    await writer.drain()
    answer: dict[str, Any] = json.loads(await reader.readline())
    writer.close()
    return answer


def _pictures() -> dict[str, Any]:
    from tests.calls.facecheck.conftest import canvas

    return {side: canvas(face) for side, face in FACES.items()}


class SentLog(dict):  # type: ignore[type-arg]
    """A track's ``sent`` (number → send time) that also notes which numbers the
    receiving peer looked up, i.e. which frames arrived (SyntheticPeer looks up every
    numbered frame it decodes)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: set[int] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        self.arrived.add(key)
        return super().get(key, default)

    def clear(self) -> None:
        super().clear()
        self.arrived.clear()


def _pair(pictures: dict[str, Any]) -> tuple[Any, Any]:
    from calls.relay.synthetic import PictureVideoTrack, SyntheticPeer

    cameras = {side: PictureVideoTrack(side, {"face": pictures[side]}, "face") for side in FACES}
    for camera in cameras.values():
        camera.sent = SentLog()
    family, prisoner = (SyntheticPeer(side, video=cameras[side]) for side in FACES)
    family.other_track, prisoner.other_track = cameras["prisoner"], cameras["family"]
    return family, prisoner


async def _connect_direct(a: Any, b: Any) -> None:
    from aiortc import RTCSessionDescription

    offer = await a.offer()
    await b.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await b.pc.setLocalDescription(await b.pc.createAnswer())
    await a.answer(b.pc.localDescription.sdp)


async def _settle(peers: list[Any]) -> bool:
    """Wait (a ceiling, not a sleep) until every peer receives the other side's frames."""

    async def each(peer: Any) -> None:
        while peer.received.kinds.get(peer.other_track.side, 0) < 5:
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(asyncio.gather(*(each(p) for p in peers)), SETTLE_CEILING)
    except TimeoutError:
        return False
    await asyncio.sleep(1)
    return True


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


async def _measure(peers: list[Any], seconds: float, pids: list[int]) -> dict[str, Any]:
    for peer in peers:
        peer.received.kinds.clear()
        peer.received.latencies.clear()
        peer.video.sent.clear()
    before = [_cpu_seconds(pid) for pid in pids]
    own = time.process_time()
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu = [_cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
    peers_cpu = 100 * (time.process_time() - own) / elapsed
    latencies = [x * 1000 for p in peers for x in p.received.latencies]
    # Frames sent in the window, until GRACE before its end, and which of them arrived
    # (by number) once GRACE has passed: frames in flight at the end are not "lost".
    end = time.monotonic() - GRACE
    sent = [{n for n, t in dict(p.video.sent).items() if t <= end} for p in peers]
    await asyncio.sleep(GRACE * 2)
    arrived = sum(len(s & p.video.sent.arrived) for s, p in zip(sent, peers, strict=True))
    total = sum(len(s) for s in sent)
    return {
        "elapsed": elapsed,
        "cpu": cpu,
        "peers_cpu": peers_cpu,
        "delivered": arrived / total if total else 0.0,
        "p50": _pct(latencies, 50),
        "p95": _pct(latencies, 95),
    }


def _drain_events(peer: Any) -> None:
    while not peer.events.empty():
        peer.events.get_nowait()


async def _keyframe_wait(calls: list[tuple[str, int, Any, Any]]) -> dict[str, Any]:
    """Pause every call, wait for the placeholder, resume: ms until each receiver
    decodes a live frame again (inf: never within RESUME_CEILING)."""
    peers = [p for _c, _port, f, pr in calls for p in (f, pr)]
    for peer in peers:
        _drain_events(peer)
    for call_id, port, _f, _p in calls:
        await _ask(port, op="state", call_id=call_id, status="paused")
    shown = await asyncio.gather(
        *(peer.wait_for("paused", 3, timeout=RESUME_CEILING) for peer in peers),
        return_exceptions=True,
    )
    no_placeholder = sum(1 for x in shown if isinstance(x, BaseException))
    for peer in peers:
        _drain_events(peer)
    started = time.monotonic()

    async def live_again(peer: Any) -> float:
        while True:
            seen = await peer.events.get()
            if seen == peer.other_track.side:
                return time.monotonic() - started

    await asyncio.gather(
        *(_ask(port, op="state", call_id=c, status="live") for c, port, _f, _p in calls)
    )
    waits = await asyncio.gather(
        *(asyncio.wait_for(live_again(p), RESUME_CEILING) for p in peers), return_exceptions=True
    )
    return {
        "waits": [w * 1000 if isinstance(w, float) else float("inf") for w in waits],
        "no_placeholder": no_placeholder,
    }


async def run_relayed(
    n: int, ports: list[int], relay_pids: list[int], seconds: float, pictures: dict[str, Any]
) -> dict[str, Any]:
    calls: list[tuple[str, int, Any, Any]] = []
    for i in range(n):
        # Equal calls and round robin: what "least loaded first" does across relays.
        call_id, port = uuid.uuid4().hex, ports[i % len(ports)]
        family, prisoner = _pair(pictures)
        for peer in (family, prisoner):
            answer = await _ask(
                port, op="offer", call_id=call_id, role=peer.side, sdp=await peer.offer()
            )
            await peer.answer(answer["sdp"])
        calls.append((call_id, port, family, prisoner))
    peers = [p for _c, _port, f, pr in calls for p in (f, pr)]
    settled = await _settle(peers)
    stats = [await _ask(port, op="stats") for port in ports]
    workers = [pid for s in stats for pid in s["workers"]]
    result = await _measure(peers, seconds, relay_pids + workers)
    after = [await _ask(port, op="stats") for port in ports]
    result["relay_cpu"] = sum(result["cpu"][: len(relay_pids)])
    result["face_cpu"] = sum(result["cpu"][len(relay_pids) :])
    result["pauses"] = sum(a["pauses"] - s["pauses"] for a, s in zip(after, stats, strict=True))
    result["checks"] = sum(a["checks"] for a in after)
    # Inside the relay (frame complete → handed to the sender), the worst process.
    result["inside"] = [max(a["inside_ms"][i] for a in after) for i in (0, 1)]
    result["settled"] = settled
    resume = await _keyframe_wait(calls) if settled else {"waits": [], "no_placeholder": 0}
    result["resume"], result["no_placeholder"] = resume["waits"], resume["no_placeholder"]
    for call_id, port, family, prisoner in calls:
        await family.close()
        await prisoner.close()
        await _ask(port, op="close", call_id=call_id)
    return result


async def run_direct(n: int, seconds: float, pictures: dict[str, Any]) -> dict[str, Any]:
    peers = []
    for _ in range(n):
        family, prisoner = _pair(pictures)
        await _connect_direct(family, prisoner)
        peers += [family, prisoner]
    settled = await _settle(peers)
    result = await _measure(peers, seconds, [])
    result["settled"] = settled
    for peer in peers:
        await peer.close()
    return result


# --- machine reference -----------------------------------------------------------------


def machine_reference(pictures: dict[str, Any]) -> tuple[float, float]:
    """(VP8 decode ms per 640×480 frame, ms of a 1M-iteration pure-Python loop)."""
    import av

    from calls.relay.synthetic import make_frame, picture_yuv

    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 640, 480, "yuv420p"
    encoder.bit_rate = 1_000_000
    encoder.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0"}
    picture = picture_yuv(pictures["family"])
    packets = []
    for number in range(60):
        frame = make_frame(number, "family", picture)
        frame.pts = number
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    decoder = av.CodecContext.create("libvpx", "r")
    decoded = 0
    started = time.perf_counter()
    for packet in packets:
        decoded += len(decoder.decode(packet))
    decode_ms = (time.perf_counter() - started) * 1000 / max(1, decoded)
    loops = []
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        loops.append((time.perf_counter() - started) * 1000)
    return decode_ms, min(loops)


def added(relayed: dict[str, Any], direct: dict[str, Any], key: str) -> float:
    """Latency the relay adds; nan when the direct baseline was itself overloaded."""
    return float(relayed[key] - direct[key]) if direct["settled"] else float("nan")


def _ports(queue: Any, processes: list[Any]) -> list[int]:
    """The relay processes' ports; stops early (not at a timeout) if one of them died."""
    import queue as queues

    ports: list[int] = []
    deadline = time.monotonic() + 300
    while len(ports) < len(processes):
        try:
            ports.append(queue.get(timeout=1))
        except queues.Empty:
            dead = [p.exitcode for p in processes if not p.is_alive()]
            if dead or time.monotonic() > deadline:
                raise SystemExit(f"a relay process did not start (exit codes {dead})") from None
    return ports


def _encodings() -> dict[str, list[float]]:
    from tests.calls.facecheck.conftest import encoding_of

    return {side: [float(x) for x in encoding_of(face[0])] for side, face in FACES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default="1,2,4", help="comma-separated N values")
    parser.add_argument(
        "--processes", type=int, default=1, help="relay processes the calls are spread over"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per N")
    parser.add_argument("--no-face-checks", action="store_true", help="relays without face checks")
    args = parser.parse_args()
    import logging

    import django

    django.setup()
    logging.getLogger("calls.facecheck").setLevel(logging.WARNING)
    from calls.facecheck.pool import pool_size, usable_cores, workers_override

    face_checks = not args.no_face_checks
    cores = usable_cores()
    pictures = _pictures()
    decode_ms, loop_ms = machine_reference(pictures)
    workers = pool_size(cores=cores, relay_processes=args.processes, override=workers_override())
    print(
        f"bench/relay.py: relay processes={args.processes} cores={cores} "
        f"face checks={'on' if face_checks else 'off'}"
        + (f" ({workers} worker(s) per relay process)" if face_checks else "")
        + f" seconds={args.seconds:g}"
    )
    print(
        f"machine: VP8 decode {decode_ms:.2f} ms per 640x480 frame; "
        f"pure-Python loop (1M additions) {loop_ms:.0f} ms; "
        f"load average {os.getloadavg()[0]:.1f} on {cores} cores (busy host: figures high)"
    )
    encodings = _encodings() if face_checks else {}

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(
            target=_relay_process,
            args=(queue, args.processes, face_checks, encodings),
            daemon=False,  # it has children of its own (the face-check pool)
        )
        for _ in range(args.processes)
    ]
    for process in processes:
        process.start()
    try:
        ports = _ports(queue, processes)
        relay_pids = [p.pid for p in processes if p.pid]
        print(
            f"{'N':>3} {'CPU/call: relay':>15} {'face':>6} {'all':>6} "
            f"{'calls/proc':>10} {'calls/core':>10} {'delivered':>9} "
            f"{'added p50':>9} {'p95 ms':>7} {'resume p50':>10} {'max ms':>7} "
            f"{'peers CPU':>9} {'pauses':>6}"
        )
        for n in [int(x) for x in args.calls.split(",")]:
            relayed = asyncio.run(run_relayed(n, ports, relay_pids, args.seconds, pictures))
            direct = asyncio.run(run_direct(n, args.seconds, pictures))
            elapsed = relayed["elapsed"]
            relay = 100 * relayed["relay_cpu"] / elapsed / n
            face = 100 * relayed["face_cpu"] / elapsed / n
            total = relay + face
            resume = relayed["resume"]
            finite = [w for w in resume if w != float("inf")]
            note = "".join(
                f"  ({name} calls never all received video: overloaded)"
                for name, run in (("relayed", relayed), ("direct", direct))
                if not run["settled"]
            )
            if len(finite) < len(resume):
                note += f"  ({len(resume) - len(finite)} receiver(s) never resumed)"
            if relayed["no_placeholder"]:
                note += f"  ({relayed['no_placeholder']} receiver(s) never saw the placeholder)"
            print(
                f"{n:>3} {relay:>14.1f}% {face:>5.1f}% {total:>5.1f}% "
                f"{n / args.processes:>10.1f} {100 / total if total else 0:>10.1f} "
                f"{relayed['delivered']:>9.1%} "
                f"{added(relayed, direct, 'p50'):>9.0f} {added(relayed, direct, 'p95'):>7.0f} "
                f"{_pct(finite, 50):>10.0f} {max(finite, default=float('nan')):>7.0f} "
                f"{relayed['peers_cpu']:>8.0f}% {relayed['pauses']:>6}{note}"
            )
            print(
                f"    relayed end to end p50/p95 {relayed['p50']:.0f}/{relayed['p95']:.0f} ms;"
                f" direct {direct['p50']:.0f}/{direct['p95']:.0f} ms,"
                f" delivered {direct['delivered']:.1%}"
                + "; inside the relay p50/p95 {:.1f}/{:.1f} ms".format(*relayed["inside"])
                + (f"; {relayed['checks']} face checks in the relays" if face_checks else "")
            )
    finally:
        for process in processes:
            process.terminate()
            process.join(10)
            if process.is_alive():
                process.kill()
    print(
        "CPU is % of one core per call; calls/core = 100 / all-in CPU per call; added ="
        " relayed minus direct latency; resume = pause then resume, until a live frame is"
        " decoded; pauses = false pauses (every face shown is approved)."
    )


if __name__ == "__main__":
    main()
