"""Per-tenant callers as a client meets them: an API key acts for its tenants only, a read-only key
only reads, unknown and revoked keys are refused, and the key file never holds a secret."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_probe import SERVICE, Probe, register

from loopkit import callers
from loopkit.callers import KeyStore
from loopkit.cli import main as cli
from loopkit.errors import InvalidArgument, PermissionDenied, Unauthenticated
from loopkit.grpc_server import GrpcServer
from loopkit_dev.testing import eventually

Code = grpc.StatusCode


@pytest_asyncio.fixture(loop_scope="session")
async def keyed(tmp_path: Path) -> AsyncIterator[tuple[Probe, KeyStore]]:
    store = KeyStore(tmp_path / "keys.json")
    server = GrpcServer("127.0.0.1", 0, keys=KeyStore(store.path))
    server.add(register, [SERVICE])
    await server.start()
    await server.set_serving(True)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    yield Probe(server, channel), store
    await channel.close()
    await server.stop(0)


async def _code(probe: Probe, method: str, tenant: str, key: str | None) -> Code:
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    try:
        await probe.call(method, tenant, metadata)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return Code.OK


async def test_a_key_acts_for_its_own_tenants_only(keyed: tuple[Probe, KeyStore]) -> None:
    probe, store = keyed
    key_a = store.add("crm-a", ["t-a"], "write")
    service = store.add("acquisition", ["*"], "write")
    assert await _code(probe, "Tenant", "t-a", key_a) == Code.OK
    assert await _code(probe, "Tenant", "t-b", key_a) == Code.PERMISSION_DENIED
    # Naming the tenant only in the metadata does not get around it either.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await probe.call(
            "Tenant", "", (("authorization", f"Bearer {key_a}"), ("x-tenant-id", "t-b"))
        )
    assert caught.value.code() == Code.PERMISSION_DENIED
    assert await _code(probe, "Tenant", "t-b", service) == Code.OK  # a service's key: any tenant


async def test_a_read_only_key_reads_and_does_not_write(keyed: tuple[Probe, KeyStore]) -> None:
    probe, store = keyed
    reporting = store.add("reporting", ["t-a"], "read")
    assert await _code(probe, "GetTenant", "t-a", reporting) == Code.OK
    assert await _code(probe, "Tenant", "t-a", reporting) == Code.PERMISSION_DENIED


async def test_missing_wrong_and_revoked_keys_are_unauthenticated(
    keyed: tuple[Probe, KeyStore],
) -> None:
    probe, store = keyed
    key = store.add("crm-a", ["t-a"], "write")
    key_id = key.removeprefix("clk_").split(".")[0]
    assert await _code(probe, "Tenant", "t-a", None) == Code.UNAUTHENTICATED
    assert await _code(probe, "Tenant", "t-a", "s3cret-token") == Code.UNAUTHENTICATED
    assert await _code(probe, "Tenant", "t-a", key[:-2] + "xx") == Code.UNAUTHENTICATED
    assert await _code(probe, "Tenant", "t-a", key) == Code.OK
    assert store.revoke(key_id)

    async def refused() -> bool:  # the server reads the changed file within seconds
        return await _code(probe, "Tenant", "t-a", key) == Code.UNAUTHENTICATED

    await eventually(refused, timeout_s=15)
    # Health and reflection stay open for probes.
    assert await probe.health() == 1


def test_the_cli_prints_a_key_once_and_keeps_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    assert cli(["keys", "--file", str(path), "add", "--name", "bi", "--tenant", "t-a"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("clk_")
    secret = key.split(".", 1)[1]
    assert secret not in path.read_text()
    assert KeyStore(path).authenticate(f"Bearer {key}").role == "read"
    assert cli(["keys", "--file", str(path), "list"]) == 0
    listed = capsys.readouterr().out
    assert "bi" in listed and "t-a" in listed and secret not in listed
    key_id = key.removeprefix("clk_").split(".")[0]
    assert cli(["keys", "--file", str(path), "revoke", key_id]) == 0
    assert KeyStore(path).entries() == []


async def test_a_secret_mounted_key_file_rotates_in_place(tmp_path: Path) -> None:
    """As Kubernetes updates a mounted Secret (the chart's apiKeys): the file is a symlink into a
    timestamped directory, and an update swaps the `..data` link at once. The services see the new
    file within seconds, without a restart."""
    writer = KeyStore(tmp_path / "edit" / "api-keys.json")
    old_key = writer.add("crm-a", ["t-a"], "write")
    mount = tmp_path / "mount"

    def publish(version: str) -> None:
        target = mount / version
        target.mkdir(parents=True)
        (target / "api-keys.json").write_bytes(writer.path.read_bytes())
        link = mount / "..data_tmp"
        link.symlink_to(version)
        link.replace(mount / "..data")  # the atomic swap

    publish("..2026_11_30_01")
    (mount / "api-keys.json").symlink_to("..data/api-keys.json")
    served = KeyStore(mount / "api-keys.json")
    assert served.authenticate(f"Bearer {old_key}").tenants == {"t-a"}

    new_key = writer.add("crm-a-2", ["t-a"], "write")
    writer.revoke(old_key.removeprefix("clk_").split(".")[0])
    publish("..2026_11_30_02")

    async def rotated() -> bool:
        try:
            served.authenticate(f"Bearer {old_key}")
        except Unauthenticated:
            return served.authenticate(f"Bearer {new_key}").name == "crm-a-2"
        return False

    await eventually(rotated, timeout_s=15)


def test_the_services_role_is_for_every_tenant_only(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    with pytest.raises(InvalidArgument, match="only \\*"):
        store.add("services", ["acme"], "service")
    key = store.add("services", ["*"], "service")
    caller = KeyStore(store.path).authenticate(f"Bearer {key}")
    caller.check_method("GetCustomerKeys", internal=True)
    writer = KeyStore(store.path).authenticate(f"Bearer {store.add('crm', ['*'], 'write')}")
    writer.check_method("CaptureLead")
    with pytest.raises(PermissionDenied, match="services' own key"):
        writer.check_method("GetCustomerKeys", internal=True)


def test_a_known_key_is_remembered_only_until_the_key_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service remembers the caller a token is (no hash per call), but a revoked key is refused
    and a key bound to other tenants acts for those as soon as the changed file is read."""
    monkeypatch.setattr(callers, "_RELOAD_EVERY_S", 0.0)  # read the file again on every call
    admin = KeyStore(tmp_path / "keys.json")
    revoked, rebound = admin.add("crm-a", ["t-a"], "write"), admin.add("crm-b", ["t-b"], "write")
    served = KeyStore(admin.path)
    first = served.authenticate(f"Bearer {revoked}")
    assert served.authenticate(f"Bearer {revoked}") is first  # remembered, not built again
    assert served.authenticate(f"Bearer {rebound}").tenants == {"t-b"}

    def changed() -> None:  # a distinct mtime: writes within one clock tick can share one
        later = admin.path.stat().st_mtime_ns + 10**9
        os.utime(admin.path, ns=(later, later))

    assert admin.revoke(revoked.removeprefix("clk_").split(".")[0])
    changed()
    with pytest.raises(Unauthenticated):
        served.authenticate(f"Bearer {revoked}")
    data = json.loads(admin.path.read_text(encoding="utf-8"))
    data["keys"][0]["tenants"] = ["t-c"]
    admin.path.write_text(json.dumps(data), encoding="utf-8")
    changed()
    assert served.authenticate(f"Bearer {rebound}").tenants == {"t-c"}


def test_a_revocation_written_within_the_same_clock_tick_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is known by more than its mtime: a revocation saved in the tick of the last write
    (the same mtime to the nanosecond here, as a coarse clock gives) is still read."""
    monkeypatch.setattr(callers, "_RELOAD_EVERY_S", 0.0)
    admin = KeyStore(tmp_path / "keys.json")
    key = admin.add("crm", ["t-a"], "write")
    served = KeyStore(admin.path)
    assert served.authenticate(f"Bearer {key}").tenants == {"t-a"}
    tick = admin.path.stat().st_mtime_ns
    assert admin.revoke(key.removeprefix("clk_").split(".")[0])
    os.utime(admin.path, ns=(tick, tick))
    with pytest.raises(Unauthenticated):
        served.authenticate(f"Bearer {key}")
