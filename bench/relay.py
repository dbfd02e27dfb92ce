"""What a call costs the relay, and how many fit a core (issue 18). Prints figures only:
it never passes or fails on time.

N concurrent calls; each call's family and prisoner are aiortc peers sending 640×480
15 fps VP8 (numbered frames over a real face: Obama on the family's camera, Biden on the
prison laptop's) and a tone as Opus, over loopback to relay process(es) running the real
RelayCall. The peers cost little and run in their own process(es) (bench/relay_peers.py):
they send a clip encoded once at start (10 s looped, a keyframe every 2 s; a keyframe
request is answered by the loop's next keyframe) and recognise what arrives by digest,
never decoding (the relay forwards bytes unchanged). So bench-process, peer-process,
relay-process and face-worker CPU are measured apart, and the peers are not what limits
the relay's figures.

Face checks are ON by default, as in production: each relay process has the shared
face-check pool sized as ``runrelay --processes P`` sizes it (calls/facecheck/pool.py)
and every call a FaceChecker with the production defaults (an unsaved Establishment's)
whose approved faces are the faces sent, attached as calls/faces.py attaches it but
without a database. The relay decodes the video it checks, as in production. Any pause
it makes is counted as a false pause (every face shown is approved).

Per N it prints:
- CPU per call, % of one core: relay processes, their face-check workers, both, and the
  peers; calls per relay process (placed: N / P) and that fit one (100 / relay CPU per
  call: a relay process is one event loop), calls per core (100 / all-in CPU per call);
- delivered: live video frames received / sent, both directions of every call;
- latency added by the relay p50/p95: sender → relay → receiver (whole frame in) minus
  the same figures of N direct peer-to-peer calls (no relay) measured in the same run;
- keyframe wait after resume: every call paused (both sides see the placeholder) then
  resumed; time until each receiver gets a live frame again (the first live keyframe:
  the relay passes nothing before it), p50/max;
- the peers' CPU (sum of the peer processes, % of one core).
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

from bench.relay_peers import GRACE, Clip, ask, encode_clip, peer_process  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
SETTLE_CEILING = 60.0  # seconds for every peer to receive its first frames (a ceiling)
RESUME_CEILING = 30.0
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
    """User + system CPU of a process, all its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _host_busy_seconds() -> float:
    """CPU seconds every process on the host has used (all cores; /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def _pictures() -> dict[str, Any]:
    from tests.calls.facecheck.conftest import canvas

    return {side: canvas(face) for side, face in FACES.items()}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


class Peers:
    """The peer processes, as the bench process drives them."""

    def __init__(self, ports: list[int], pids: list[int]) -> None:
        self.ports = ports
        self.pids = pids

    async def each(self, op: str, ports: list[int] | None = None, **kwargs: Any) -> list[Any]:
        replies = await asyncio.gather(*(ask(p, op=op, **kwargs) for p in ports or self.ports))
        for reply in replies:
            if not reply.get("ok"):
                raise RuntimeError(f"peer process {reply.get('pid')}: {op}: {reply.get('error')}")
        return list(replies)


async def _measure(peers: Peers, seconds: float, pids: dict[str, list[int]]) -> dict[str, Any]:
    """Frames and CPU over ``seconds``; CPU per pid of each group (relay, face, peers)."""
    every = [pid for group in pids.values() for pid in group]
    before = {pid: _cpu_seconds(pid) for pid in every}
    host = _host_busy_seconds()
    own = time.process_time()
    started = time.monotonic()
    await peers.each("start")
    await asyncio.sleep(seconds)
    await peers.each("stop")
    elapsed = time.monotonic() - started
    cpu = {pid: _cpu_seconds(pid) - before[pid] for pid in every}
    bench_cpu = time.process_time() - own
    # What the rest of the host used meanwhile (another benchmark, a build): figures
    # taken while it is high are pessimistic.
    others = max(0.0, _host_busy_seconds() - host - sum(cpu.values()) - bench_cpu)
    # Frames sent until GRACE before the end, and which of them arrived once GRACE has
    # passed: frames in flight at the end are not "lost".
    await asyncio.sleep(GRACE * 2)
    got = await peers.each("collect")
    latencies = [x for r in got for x in r["latencies_ms"]]
    sent = sum(r["sent"] for r in got)
    audio = sum(r["audio_live"] + r["audio_other"] for r in got)
    return {
        "elapsed": elapsed,
        "cpu": {group: [cpu[pid] for pid in members] for group, members in pids.items()},
        "bench_cpu": bench_cpu,
        "others_cpu": others,
        "delivered": sum(r["arrived"] for r in got) / sent if sent else 0.0,
        "frames": sum(r["arrived"] for r in got),
        "audio_live": sum(r["audio_live"] for r in got) / audio if audio else 0.0,
        "keyframe_requests": sum(r["keyframe_requests"] for r in got),
        "jumps": sum(r["jumps"] for r in got),
        "p50": _pct(latencies, 50),
        "p95": _pct(latencies, 95),
    }


async def _keyframe_wait(
    calls: list[tuple[str, int]], peers: Peers, ports: list[int]
) -> dict[str, Any]:
    """Pause every call, wait for the placeholder, resume: ms until each receiver gets
    a live frame again (inf: never within RESUME_CEILING)."""
    for call_id, port in calls:
        await ask(port, op="state", call_id=call_id, status="paused")
    shown = await peers.each("await_placeholder", ports, count=3, ceiling=RESUME_CEILING)
    await peers.each("arm", ports)
    started = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
    await asyncio.gather(
        *(ask(port, op="state", call_id=call_id, status="live") for call_id, port in calls)
    )
    got = await peers.each("await_live", ports, started=started, ceiling=RESUME_CEILING)
    return {
        "waits": [float("inf") if w is None else w for r in got for w in r["waits_ms"]],
        "no_placeholder": sum(r["missing"] for r in shown),
    }


async def run_relayed(
    n: int, ports: list[int], relay_pids: list[int], peers: Peers, seconds: float
) -> dict[str, Any]:
    # Equal calls and round robin: what "least loaded first" does across relays; the
    # calls' peers round robin over the peer processes, both sides of a call in one.
    calls = [(uuid.uuid4().hex, ports[i % len(ports)]) for i in range(n)]
    share = {
        port: [list(c) for i, c in enumerate(calls) if i % len(peers.ports) == w]
        for w, port in enumerate(peers.ports)
    }
    busy = [port for port, mine in share.items() if mine]
    await asyncio.gather(*(ask(port, op="relayed", calls=share[port]) for port in busy))
    settled = all(r["settled"] for r in await peers.each("settle", busy, ceiling=SETTLE_CEILING))
    await asyncio.sleep(1)
    stats = [await ask(port, op="stats") for port in ports]
    workers = [pid for s in stats for pid in s["workers"]]
    result = await _measure(
        peers, seconds, {"relay": relay_pids, "face": workers, "peers": peers.pids}
    )
    after = [await ask(port, op="stats") for port in ports]
    result["pauses"] = sum(a["pauses"] - s["pauses"] for a, s in zip(after, stats, strict=True))
    result["checks"] = sum(a["checks"] for a in after)
    # Inside the relay (frame complete → handed to the sender), the worst process.
    result["inside"] = [max(a["inside_ms"][i] for a in after) for i in (0, 1)]
    result["settled"] = settled
    resume = (
        await _keyframe_wait(calls, peers, busy) if settled else {"waits": [], "no_placeholder": 0}
    )
    result["resume"], result["no_placeholder"] = resume["waits"], resume["no_placeholder"]
    await peers.each("close", busy)
    for call_id, port in calls:
        await ask(port, op="close", call_id=call_id)
    return result


async def run_direct(n: int, peers: Peers, seconds: float) -> dict[str, Any]:
    count = len(peers.ports)
    share = {port: n // count + (1 if w < n % count else 0) for w, port in enumerate(peers.ports)}
    busy = [port for port, k in share.items() if k]
    await asyncio.gather(*(ask(port, op="direct", n=share[port]) for port in busy))
    settled = all(r["settled"] for r in await peers.each("settle", busy, ceiling=SETTLE_CEILING))
    await asyncio.sleep(1)
    result = await _measure(peers, seconds, {"peers": peers.pids})
    result["settled"] = settled
    await peers.each("close", busy)
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


def _start(
    context: Any, target: Any, args: tuple[Any, ...], count: int
) -> tuple[list[Any], list[int]]:
    """``count`` processes running ``target``, and the ports they listen on."""
    queue = context.Queue()
    processes = [
        # Not daemons: a relay process has children of its own (the face-check pool).
        context.Process(target=target, args=(queue, *args), daemon=False)
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    return processes, _ports(queue, processes)


def _stop(processes: list[Any]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(10)
        if process.is_alive():
            process.kill()


def _row(n: int, processes: int, relayed: dict[str, Any], direct: dict[str, Any]) -> str:
    elapsed = relayed["elapsed"]
    cpu = relayed["cpu"]
    relay = 100 * sum(cpu["relay"]) / elapsed / n
    face = 100 * sum(cpu["face"]) / elapsed / n
    total = relay + face
    peers = 100 * sum(cpu["peers"]) / elapsed
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
    others = 100 * relayed["others_cpu"] / elapsed
    if others > 25:
        note += f"  (the rest of the host used {others:.0f}% of a core meanwhile)"
    return (
        f"{n:>3} {relay:>14.1f}% {face:>5.1f}% {total:>5.1f}% {peers / n:>5.1f}% "
        f"{n / processes:>10.1f} {100 / relay if relay else 0:>8.1f} "
        f"{100 / total if total else 0:>10.1f} "
        f"{relayed['delivered']:>9.1%} "
        f"{added(relayed, direct, 'p50'):>9.0f} {added(relayed, direct, 'p95'):>7.0f} "
        f"{_pct(finite, 50):>10.0f} {max(finite, default=float('nan')):>7.0f} "
        f"{peers:>8.0f}% {relayed['pauses']:>6}{note}"
    )


def _detail(relayed: dict[str, Any], direct: dict[str, Any], face_checks: bool) -> str:
    elapsed = relayed["elapsed"]
    cpu = relayed["cpu"]

    def shares(values: list[float]) -> str:
        return "+".join(f"{100 * v / elapsed:.0f}" for v in values) or "0"

    return (
        f"    relayed end to end p50/p95 {relayed['p50']:.0f}/{relayed['p95']:.0f} ms;"
        f" direct {direct['p50']:.0f}/{direct['p95']:.0f} ms,"
        f" delivered {direct['delivered']:.1%}"
        + "; inside the relay p50/p95 {:.1f}/{:.1f} ms".format(*relayed["inside"])
        + (f"; {relayed['checks']} face checks in the relays" if face_checks else "")
        + f"\n    {relayed['frames']} live video frames received; audio live"
        f" {relayed['audio_live']:.1%} of packets received; {relayed['keyframe_requests']}"
        f" keyframe requests reached the peers while measured ({relayed['jumps']} made"
        " the loop jump to a keyframe); CPU % of a core by process:"
        f" relay {shares(cpu['relay'])}, face workers {shares(cpu['face'])},"
        f" peers {shares(cpu['peers'])}, bench {100 * relayed['bench_cpu'] / elapsed:.0f};"
        f" rest of the host {100 * relayed['others_cpu'] / elapsed:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default="1,2,4", help="comma-separated N values")
    parser.add_argument(
        "--processes", type=int, default=1, help="relay processes the calls are spread over"
    )
    parser.add_argument(
        "--peer-processes", type=int, default=1, help="processes the calls' peers run in"
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
        f"bench/relay.py: relay processes={args.processes} peer processes={args.peer_processes}"
        f" cores={cores} face checks={'on' if face_checks else 'off'}"
        + (f" ({workers} worker(s) per relay process)" if face_checks else "")
        + f" seconds={args.seconds:g}"
    )
    print(
        f"machine: VP8 decode {decode_ms:.2f} ms per 640x480 frame; "
        f"pure-Python loop (1M additions) {loop_ms:.0f} ms; "
        f"load average {os.getloadavg()[0]:.1f} on {cores} cores (busy host: figures high)",
        flush=True,
    )
    clips: dict[str, Clip] = {side: encode_clip(side, pictures[side]) for side in FACES}
    family = clips["family"]
    print(
        f"clip per side: {len(family.frames)} VP8 frames looped ({len(family.frames) // 15} s"
        f" at 15 fps, {len(family.keyframes)} keyframes, the largest"
        f" {family.keyframe_bytes / 1000:.0f} KB), family {family.kbps:.0f} kbps, prisoner"
        f" {clips['prisoner'].kbps:.0f} kbps, Opus 96 kbps; peers never encode nor decode",
        flush=True,
    )
    encodings = _encodings() if face_checks else {}

    context = multiprocessing.get_context("spawn")
    relays: list[Any] = []
    peer_processes: list[Any] = []
    try:
        relays, ports = _start(
            context, _relay_process, (args.processes, face_checks, encodings), args.processes
        )
        peer_processes, peer_ports = _start(context, peer_process, (clips,), args.peer_processes)
        relay_pids = [p.pid for p in relays if p.pid]
        peers = Peers(peer_ports, [p.pid for p in peer_processes if p.pid])
        print(
            f"{'N':>3} {'CPU/call: relay':>15} {'face':>6} {'all':>6} {'peers':>6} "
            f"{'calls/proc':>10} {'fit/proc':>8} {'calls/core':>10} {'delivered':>9} "
            f"{'added p50':>9} {'p95 ms':>7} {'resume p50':>10} {'max ms':>7} "
            f"{'peers CPU':>9} {'pauses':>6}"
        )
        for n in [int(x) for x in args.calls.split(",")]:
            relayed = asyncio.run(run_relayed(n, ports, relay_pids, peers, args.seconds))
            direct = asyncio.run(run_direct(n, peers, args.seconds))
            print(_row(n, args.processes, relayed, direct))
            print(_detail(relayed, direct, face_checks), flush=True)
    finally:
        _stop(peer_processes)
        _stop(relays)
    print(
        "CPU is % of one core per call (peers CPU: all peer processes, % of one core);"
        " calls/proc = calls placed on each relay process, fit/proc = 100 / relay CPU per"
        " call (one event loop), calls/core = 100 / all-in (relay + face) CPU per call;"
        " added = relayed minus direct latency; resume = pause then resume, until a live"
        " frame arrives; pauses = false pauses (every face shown is approved)."
    )


if __name__ == "__main__":
    main()
