"""Run one media relay process (production). Run one per core, on as many hosts as needed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run a media relay: announce it in Redis and answer the calls assigned to it."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--relay-id",
            default=os.environ.get("RELAY_ID") or None,
            help="Name in the registry (default: $RELAY_ID, else random); "
            "`manage.py healthcheck relay` looks for it.",
        )

    def handle(self, *args: object, **options: object) -> None:
        if not settings.REDIS_URL:
            raise CommandError(
                "runrelay needs REDIS_URL (a channel layer and registry shared with the web "
                "processes). Without Redis the relay runs inside the web process."
            )
        if settings.RELAY_IN_PROCESS:
            raise CommandError("Set RELAY_IN_PROCESS=false so web processes use this relay.")
        asyncio.run(self._run(options.get("relay_id")))  # type: ignore[arg-type]

    async def _publish_stats(self, relay_id: str, stop: asyncio.Event) -> None:
        """Every few seconds: this relay's CPU (with its face-check workers') and its
        face-check figures, for /metrics (purplevisits/metrics.py)."""
        from purplevisits import metrics

        def publish() -> None:
            cpu = metrics.process_cpu_seconds()
            if settings.FACE_CHECKS_ENABLED:
                from calls.facecheck import shared_pool

                cpu += sum(metrics.process_cpu_seconds(p) for p in shared_pool().worker_pids())
            metrics.relay_stats_publish(relay_id=relay_id, cpu_seconds=cpu)

        while not stop.is_set():
            try:
                await asyncio.to_thread(publish)
            except Exception:  # noqa: BLE001 - figures are not worth stopping a relay for
                logger.warning("relay %s: publishing figures failed", relay_id, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.METRICS_FLUSH_SECONDS)

    async def _run(self, relay_id: str | None) -> None:
        from calls.relay.registry import RedisRegistry
        from calls.relay.server import RelayServer

        server = RelayServer(
            registry=RedisRegistry(settings.REDIS_URL, key=settings.RELAY_REGISTRY_KEY),
            relay_id=relay_id,
        )
        await server.start()
        self.stdout.write(f"relay {server.relay_id} running on {server.channel}")
        if settings.FACE_CHECKS_ENABLED:
            from calls.facecheck import shared_pool

            # Start the face-check workers now, not on the first call's first check.
            pids = await shared_pool().warm()
            self.stdout.write(f"face checks on: {len(pids)} worker process(es)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stats = asyncio.create_task(self._publish_stats(server.relay_id, stop))
        await stop.wait()
        stats.cancel()
        self.stdout.write("stopping: closing every peer")
        await server.stop()
        from calls.facecheck import close_shared_pool

        close_shared_pool()
