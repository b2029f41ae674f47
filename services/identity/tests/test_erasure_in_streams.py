"""Erasure that reaches the streams: identity's events carry personal values sealed under the
customer's data key, and ForgetCustomer destroys the key (crypto-shredding)."""

import asyncio
import uuid

import grpc
import pytest
from sqlalchemy import event, select, text

from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop_identity.customers.identities import ClaimedIdentity, IdentityKey, Kind
from closedloop_identity.main import use_cases
from closedloop_identity.models import CustomerKeyRow, kit
from identity_helpers import openid, phone, resolve_request
from loopkit import pii
from loopkit.db import transact
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events

PHONE = "13900139000"
OPENID = "o-shred-me"


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def test_identity_events_never_show_a_person_and_forget_makes_them_unreadable(
    stub, tenant, identity, nats_client
):
    created = await stub.ResolveCustomer(resolve_request(tenant, phone(PHONE), openid(OPENID)))
    cid = created.customer.customer_id

    async def created_event() -> list[ev.CustomerCreated]:
        events = await read_events(nats_client, "IDENTITY", tenant_id=tenant)
        return [unpack(e, ev.CustomerCreated) for e in events if e.type == "customer.created"]

    await eventually(created_event)
    history = await read_events(nats_client, "IDENTITY", tenant_id=tenant)
    for env in history:
        raw = env.SerializeToString()
        assert PHONE.encode() not in raw and OPENID.encode() not in raw
    [event] = await created_event()
    sealed = sorted(i.value for i in event.identities)
    assert sealed and all(pii.is_sealed(v) for v in sealed)

    # The platform's own services open them with the key identity hands out.
    [key] = (
        await stub.GetCustomerKeys(pb.GetCustomerKeysRequest(tenant_id=tenant, customer_ids=[cid]))
    ).keys
    assert not key.erased
    opened = sorted(pii.unseal(key.key, tenant, cid, v) for v in sealed)
    assert opened == sorted(["+86" + PHONE, OPENID])

    await stub.ForgetCustomer(pb.ForgetCustomerRequest(tenant_id=tenant, customer_id=cid))
    [after] = (
        await stub.GetCustomerKeys(pb.GetCustomerKeysRequest(tenant_id=tenant, customer_ids=[cid]))
    ).keys
    assert after.erased and after.key == b""
    # Identity's outbox keeps no plain-text copy either (rows with personal data are deleted
    # once published; the forget event itself names no one).
    async with identity.runtime.sessions() as session:
        datas = (await session.execute(select(kit.outbox.c.data))).scalars().all()
    assert all(PHONE.encode() not in d and OPENID.encode() not in d for d in datas)

    # The same person coming back is a new customer with a new key: the old history stays shut.
    back = await stub.ResolveCustomer(resolve_request(tenant, phone(PHONE)))
    assert back.created
    [fresh] = (
        await stub.GetCustomerKeys(
            pb.GetCustomerKeysRequest(tenant_id=tenant, customer_ids=[back.customer.customer_id])
        )
    ).keys
    with pytest.raises(pii.Unreadable):
        pii.unseal(fresh.key, tenant, cid, sealed[0])


async def test_keys_are_refused_for_ids_identity_never_issued(stub, tenant):
    answer = await stub.GetCustomerKeys(
        pb.GetCustomerKeysRequest(tenant_id=tenant, customer_ids=["01JNOSUCHCUSTOMER000000000"])
    )
    assert [(k.erased, k.key) for k in answer.keys] == [(True, b"")]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetCustomerKeys(pb.GetCustomerKeysRequest(tenant_id=tenant))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_new_customers_key_is_written_with_it_and_dropped_here_at_the_forget(
    stub, tenant, identity
):
    """The resolve that creates a customer writes its data key in the same statement, and this
    process's relay seals with it without reading it back; the forget stops this process using it
    at once (not only after CLOSEDLOOP_PII_KEY_CACHE_S)."""
    created = await stub.ResolveCustomer(resolve_request(tenant, openid(OPENID)))
    cid = created.customer.customer_id
    async with identity.runtime.sessions() as session:
        stored = (
            await session.execute(
                select(CustomerKeyRow.key).where(CustomerKeyRow.customer_id == cid)
            )
        ).scalar_one()
    cache = identity.runtime.pii_cache
    assert cache is not None
    # Held since the commit (no key read by the relay): the very key the database has.
    assert (await cache.keys(tenant, [cid])) == {cid: stored}
    [handed] = (
        await stub.GetCustomerKeys(pb.GetCustomerKeysRequest(tenant_id=tenant, customer_ids=[cid]))
    ).keys
    assert handed.key == stored

    await stub.ForgetCustomer(pb.ForgetCustomerRequest(tenant_id=tenant, customer_id=cid))
    assert (await cache.keys(tenant, [cid])) == {cid: None}


async def test_a_customer_without_a_key_gets_one_on_first_request(stub, tenant, identity):
    """The locking path creates customers without a key: the first GetCustomerKeys creates it,
    and every later answer hands out the same one."""
    service = use_cases(identity.runtime.outbox).resolve
    claim = ClaimedIdentity(IdentityKey(Kind.WECHAT_OPENID, "wx-app", OPENID))
    made = await transact(
        identity.runtime.sessions,
        lambda s: service.resolve_locked(s, tenant, [claim], {}, "test"),
    )
    cid = made.customer.customer_id
    request = pb.GetCustomerKeysRequest(tenant_id=tenant, customer_ids=[cid])
    [first] = (await stub.GetCustomerKeys(request)).keys
    [again] = (await stub.GetCustomerKeys(request)).keys
    assert not first.erased and len(first.key) == pii.KEY_BYTES
    assert again.key == first.key


async def test_data_keys_are_for_the_services_key_only(identity, stub, tenant):
    """The keys that open every sealed value of a customer go only to the platform's own
    services: a tenant's key, even a writing one or one for every tenant, is refused."""
    cid = (await stub.ResolveCustomer(resolve_request(tenant, phone(PHONE)))).customer.customer_id
    ask = pb.GetCustomerKeysRequest(tenant_id=tenant, customer_ids=[cid])
    keys = identity.keys
    for role, tenants in (("read", [tenant]), ("write", [tenant]), ("write", ["*"])):
        key = keys.tenant_key(*tenants, role=role, name=f"{role}-{tenants[0]}")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetCustomerKeys(ask, metadata=keys.metadata(key))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, (role, tenants)
        assert "services' own key" in (err.value.details() or "")
        # The same key still makes the tenant's ordinary calls.
        got = await stub.GetCustomer(
            pb.GetCustomerRequest(tenant_id=tenant, customer_id=cid), metadata=keys.metadata(key)
        )
        assert got.customer.customer_id == cid
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetCustomerKeys(ask, metadata=(("authorization", "Bearer clk_nope.nope"),))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The services' key (what the channel presents) gets them.
    [key] = (await stub.GetCustomerKeys(ask)).keys
    assert not key.erased and key.key


# PostgreSQL only: SQLite runs GetCustomerKeys in one transaction, serial with the forget's.
@pytest.mark.parametrize("identity", ["postgres"], indirect=True)
async def test_a_key_asked_for_while_its_customer_is_forgotten_is_not_left_behind(
    stub, tenant, identity
):
    """A customer the locking path created has no key until the first GetCustomerKeys, which
    reads (no key yet) and then writes one, each statement committing alone. A ForgetCustomer
    that commits between the two finds no key to destroy: the key written after it must not stay
    (the answer is `erased` either way). Forced here: the test holds the key table's write lock,
    lets the call read, and forgets the customer under that lock before the call may write."""
    cases = use_cases(identity.runtime.outbox)
    claim = ClaimedIdentity(IdentityKey(Kind.WECHAT_OPENID, "wx-app", f"o-{tenant}"))
    made = await transact(
        identity.runtime.sessions,
        lambda s: cases.resolve.resolve_locked(s, tenant, [claim], {}, "test"),
    )
    cid = made.customer.customer_id
    writing = asyncio.Event()

    def before_write(conn, cursor, statement, parameters, context, executemany):  # noqa: PLR0917
        if statement.lstrip().upper().startswith("INSERT INTO CUSTOMER_KEYS"):
            writing.set()

    engine = identity.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before_write)
    try:
        async with identity.runtime.sessions() as session, session.begin():
            await session.execute(text("LOCK TABLE customer_keys IN SHARE ROW EXCLUSIVE MODE"))
            asked = asyncio.ensure_future(
                stub.GetCustomerKeys(
                    pb.GetCustomerKeysRequest(tenant_id=tenant, customer_ids=[cid])
                )
            )
            await eventually(_set(writing))  # it read "no key yet" and waits to write one
            await cases.erasure.forget(session, tenant, cid, "test", "asked while forgotten")
        [answer] = (await asked).keys
    finally:
        event.remove(engine, "before_cursor_execute", before_write)
    assert answer.erased and not answer.key
    async with identity.runtime.sessions() as session:
        left = (
            (
                await session.execute(
                    select(CustomerKeyRow.key).where(
                        CustomerKeyRow.tenant_id == tenant, CustomerKeyRow.customer_id == cid
                    )
                )
            )
            .scalars()
            .all()
        )
    assert all(key is None for key in left), "a live key of a forgotten customer stayed"


def _set(flag: asyncio.Event):
    async def check() -> bool:
        return flag.is_set()

    return check


async def test_a_creating_resolve_hands_the_new_key_to_the_services_key_only(
    identity, stub, tenant
):
    """ResolveCustomer answers a customer it created with their data key (the caller's relay
    then seals their first events without GetCustomerKeys), under GetCustomerKeys' own rule: only
    to the services' key. A tenant's writing key, even one for every tenant, gets none; nor does a
    resolve that created nobody."""
    keys = identity.keys
    for n, (role, tenants) in enumerate((("write", [tenant]), ("write", ["*"]))):
        key = keys.tenant_key(*tenants, role=role, name=f"resolver-{n}")
        answer = await stub.ResolveCustomer(
            resolve_request(tenant, phone(f"1390013{n:04d}")), metadata=keys.metadata(key)
        )
        assert answer.created and answer.customer_key == b"", (role, tenants)

    created = await stub.ResolveCustomer(resolve_request(tenant, openid(OPENID)))
    assert created.created
    cid = created.customer.customer_id
    [stored] = (
        await stub.GetCustomerKeys(pb.GetCustomerKeysRequest(tenant_id=tenant, customer_ids=[cid]))
    ).keys
    assert len(created.customer_key) == pii.KEY_BYTES
    assert created.customer_key == stored.key
    again = await stub.ResolveCustomer(resolve_request(tenant, openid(OPENID)))
    assert not again.created and again.customer_key == b""
