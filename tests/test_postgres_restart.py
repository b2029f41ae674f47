"""A PostgreSQL restart loses nothing: calls during the outage fail as UNAVAILABLE (retryable),
the service recovers by itself, and every committed customer and event survives exactly once."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import nats
import pytest

from closedloop.common.v1 import common_pb2 as c
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop_identity.main import DEFINITION
from loopkit.natsserver import free_port
from loopkit.testing import eventually, read_events, running_service

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class ThrowawayCluster:
    """A PostgreSQL cluster of this test's own (initdb + pg_ctl as user postgres)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60
        )

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        )

    def start(self) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.folder / "log"),
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/closedloop_identity"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ThrowawayCluster]:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.fail(f"PostgreSQL server binaries are needed under {PG_BIN}")
    pg = ThrowawayCluster(Path("/tmp") / f"closedloop-pg-{tmp_path.name}")
    pg.init()
    pg.start()
    yield pg
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        pg.stop("immediate")
    shutil.rmtree(pg.folder, ignore_errors=True)


def _resolve(value: str) -> pb.ResolveCustomerRequest:
    return pb.ResolveCustomerRequest(
        tenant_id="t-pg", identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value=value)]
    )


async def test_identity_survives_a_postgres_restart(
    cluster: ThrowawayCluster, nats_server, tmp_path: Path
) -> None:
    async with running_service(
        DEFINITION, database_url=cluster.url, nats_url=nats_server.url, state_dir=tmp_path
    ) as svc:
        stub = identity_pb2_grpc.IdentityServiceStub(svc.channel)
        before = await stub.ResolveCustomer(_resolve("u-before"))
        cluster.stop("immediate")  # a crash, not a polite shutdown
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ResolveCustomer(_resolve("u-during"))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        cluster.start()

        async def answers() -> bool:
            try:
                await stub.ResolveCustomer(_resolve("u-after"))
            except grpc.aio.AioRpcError:
                return False
            return True

        await eventually(answers, timeout_s=20)
        again = await stub.ResolveCustomer(_resolve("u-before"))
        assert again.customer.customer_id == before.customer.customer_id and not again.created

    nc = await nats.connect(nats_server.url)
    try:

        async def two_created() -> bool:
            events = await read_events(nc, "IDENTITY", tenant_id="t-pg")
            return sorted(e.type for e in events) == ["customer.created"] * 2

        await eventually(two_created)
    finally:
        await nc.close()
