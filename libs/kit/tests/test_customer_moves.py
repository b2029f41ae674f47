"""The move log: a merge logs what it re-points and sets aside, an unmerge gives exactly that back
(on PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, DateTime, Integer, String, Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit_testbed import Database
from loopkit import db
from loopkit.customer_rows import (
    forget_in_set_aside,
    forget_moves,
    give_back_customer,
    repoint_customer,
    set_aside,
)
from loopkit.tables import customer_moves_table

T = "t-kit"
META = db.new_metadata()
MOVES = customer_moves_table(META)
# A row keyed by its own id ...
NOTES = Table(
    "notes",
    META,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", String(26), nullable=False),
    Column("text", String(64), nullable=False),
)
# ... and one whose key holds the customer (one per customer and tag).
TAGS = Table(
    "tags",
    META,
    Column("tenant_id", String(64), primary_key=True),
    Column("customer_id", String(26), primary_key=True),
    Column("tag", String(32), primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
)
# ... and one that names another customer too (who referred them), in a column and in JSON.
CARDS = Table(
    "cards",
    META,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", String(26), nullable=False),
    Column("referrer_id", String(26), nullable=True),
    Column("credit", JSON, nullable=False),
)
SINCE = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


async def schema(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(META.create_all)


async def notes(session: AsyncSession) -> dict[int, str]:
    rows = await session.execute(
        select(NOTES.c.id, NOTES.c.customer_id).where(NOTES.c.tenant_id == T).order_by(NOTES.c.id)
    )
    return {i: c for i, c in rows.all()}


async def tags(session: AsyncSession) -> set[tuple[str, str]]:
    return {(c, t) for c, t in (await session.execute(select(TAGS.c.customer_id, TAGS.c.tag)))}


async def merge(session: AsyncSession, survivor: str, gone: str, merge_id: str) -> None:
    """What a service does on customer.merged: the colliding tag set aside, the rest moved."""
    theirs = (
        await session.execute(select(TAGS).where(TAGS.c.tenant_id == T, TAGS.c.customer_id == gone))
    ).all()
    mine = {t for c, t in await tags(session) if c == survivor}
    clash = [dict(r._mapping) for r in theirs if r.tag in mine]
    args = {"tenant_id": T, "merge_id": merge_id, "from_id": gone, "to_id": survivor}
    await set_aside(session, TAGS, "customer_id", clash, **args)
    for row in clash:
        await session.execute(
            delete(TAGS).where(
                TAGS.c.tenant_id == T, TAGS.c.customer_id == gone, TAGS.c.tag == row["tag"]
            )
        )
    await repoint_customer(session, [(NOTES, "customer_id"), (TAGS, "customer_id")], **args)


async def test_a_merge_is_given_back_exactly(database: Database) -> None:
    await schema(database)
    async with database.sessions.begin() as s:
        await s.execute(
            insert(NOTES),
            [
                {"tenant_id": T, "id": 1, "customer_id": "A", "text": "a's"},
                {"tenant_id": T, "id": 2, "customer_id": "B", "text": "b's"},
                {"tenant_id": T, "id": 3, "customer_id": "B", "text": "b's too"},
                {"tenant_id": "other", "id": 2, "customer_id": "B", "text": "another tenant"},
            ],
        )
        await s.execute(
            insert(TAGS),
            [
                {"tenant_id": T, "customer_id": "A", "tag": "vip", "since": SINCE},
                {"tenant_id": T, "customer_id": "B", "tag": "vip", "since": SINCE},
                {"tenant_id": T, "customer_id": "B", "tag": "new", "since": SINCE},
            ],
        )
    async with database.sessions.begin() as s:
        await merge(s, "A", "B", "m-1")
    async with database.sessions.begin() as s:
        assert await notes(s) == {1: "A", 2: "A", 3: "A"}
        assert await tags(s) == {("A", "vip"), ("A", "new")}
        # After the merge the survivor gets a note of its own; then A itself is merged into C.
        await s.execute(insert(NOTES).values(tenant_id=T, id=4, customer_id="A", text="later"))
    async with database.sessions.begin() as s:
        await merge(s, "C", "A", "m-2")

    # Undo the first merge: B's rows come back from C, where the second merge took them.
    async with database.sessions.begin() as s:
        given = await give_back_customer(
            s, META, tenant_id=T, merge_id="m-1", restored_id="B", survivor_id="C"
        )
    assert given.moved == {"notes": 2, "tags": 1}
    assert [(r["customer_id"], r["tag"], r["since"]) for r in given.restored["tags"]] == [
        ("B", "vip", SINCE)
    ]
    async with database.sessions.begin() as s:
        assert await notes(s) == {1: "C", 2: "B", 3: "B", 4: "C"}
        assert await tags(s) == {("C", "vip"), ("B", "vip"), ("B", "new")}
        since = (await s.execute(select(TAGS.c.since).where(TAGS.c.customer_id == "B"))).scalars()
        assert {db_since.replace(tzinfo=UTC) for db_since in since} == {SINCE}
        other = await s.execute(select(NOTES.c.customer_id).where(NOTES.c.tenant_id == "other"))
        assert other.scalars().all() == ["B"]
        left = await s.execute(select(MOVES.c.merge_id).distinct())
        assert left.scalars().all() == ["m-2"]

    # The same unmerge again finds nothing to do.
    async with database.sessions.begin() as s:
        again = await give_back_customer(
            s, META, tenant_id=T, merge_id="m-1", restored_id="B", survivor_id="C"
        )
        assert not again.anything
        assert await notes(s) == {1: "C", 2: "B", 3: "B", 4: "C"}

    # Undo the second: A gets back what it had then (its own rows and the one made later).
    async with database.sessions.begin() as s:
        await give_back_customer(
            s, META, tenant_id=T, merge_id="m-2", restored_id="A", survivor_id="C"
        )
        assert await notes(s) == {1: "A", 2: "B", 3: "B", 4: "A"}
        assert await tags(s) == {("A", "vip"), ("B", "vip"), ("B", "new")}


async def test_a_merge_without_a_merge_id_logs_nothing(database: Database) -> None:
    await schema(database)
    async with database.sessions.begin() as s:
        await s.execute(insert(NOTES).values(tenant_id=T, id=1, customer_id="B", text="b"))
        moved = await repoint_customer(
            s, [(NOTES, "customer_id")], tenant_id=T, from_id="B", to_id="A"
        )
        assert moved == 1
        assert (await s.execute(select(MOVES))).all() == []


async def test_forgetting_a_customer_drops_their_moves_and_set_aside_copies(
    database: Database,
) -> None:
    await schema(database)
    async with database.sessions.begin() as s:
        await s.execute(
            insert(TAGS),
            [
                {"tenant_id": T, "customer_id": "A", "tag": "vip", "since": SINCE},
                {"tenant_id": T, "customer_id": "B", "tag": "vip", "since": SINCE},
                {"tenant_id": T, "customer_id": "D", "tag": "x", "since": SINCE},
            ],
        )
        await s.execute(insert(NOTES).values(tenant_id=T, id=1, customer_id="B", text="b"))
        await merge(s, "A", "B", "m-1")
        await merge(s, "E", "D", "m-2")
        await forget_moves(s, META, tenant_id=T, customer_ids=["A", "B"])
        left = await s.execute(select(MOVES.c.merge_id, MOVES.c.from_id).distinct())
        assert left.all() == [("m-2", "D")]


async def test_a_set_aside_row_of_the_survivor_comes_back_to_the_survivor(
    database: Database,
) -> None:
    """When the merged customer's row is the one kept (say the older of two), the survivor's own
    row is set aside: the unmerge gives it back to the survivor, not to the restored one."""
    await schema(database)
    args = {"tenant_id": T, "merge_id": "m-1", "from_id": "B", "to_id": "A"}
    async with database.sessions.begin() as s:
        await s.execute(
            insert(NOTES),
            [
                {"tenant_id": T, "id": 1, "customer_id": "A", "text": "a's, newer"},
                {"tenant_id": T, "id": 2, "customer_id": "B", "text": "b's, older: kept"},
            ],
        )
        mine = (await s.execute(select(NOTES).where(NOTES.c.id == 1))).mappings().all()
        await set_aside(s, NOTES, "customer_id", mine, **args)
        await s.execute(delete(NOTES).where(NOTES.c.id == 1))
        await repoint_customer(s, [(NOTES, "customer_id")], **args)
        assert await notes(s) == {2: "A"}
    async with database.sessions.begin() as s:
        given = await give_back_customer(
            s, META, tenant_id=T, merge_id="m-1", restored_id="B", survivor_id="A"
        )
        assert given.moved == {"notes": 1}
        assert await notes(s) == {1: "A", 2: "B"}


async def test_forgetting_a_referrer_empties_them_in_set_aside_copies_of_others_rows(
    database: Database,
) -> None:
    """B's card, set aside by B's merge into A, names R as its referrer; R is forgotten later
    (the copy is B's, so forget_moves keeps it): the unmerge gives B's card back without R."""
    await schema(database)
    args = {"tenant_id": T, "merge_id": "m-1", "from_id": "B", "to_id": "A"}
    card = {"tenant_id": T, "id": 2, "customer_id": "B", "referrer_id": "R"}
    async with database.sessions.begin() as s:
        await s.execute(
            insert(CARDS),
            [
                {**card, "credit": {"referrer": "R", "code": "C-1", "more": {"by": "R"}}},
                {
                    **card,
                    "id": 3,
                    "customer_id": "Q",
                    "referrer_id": "S",
                    "credit": {"referrer": "S"},
                },
            ],
        )
        copies = (await s.execute(select(CARDS).where(CARDS.c.id.in_([2, 3])))).mappings().all()
        await set_aside(s, CARDS, "customer_id", copies[:1], **args)
        await set_aside(s, CARDS, "customer_id", copies[1:], **{**args, "merge_id": "m-2"})
        await s.execute(delete(CARDS))
    async with database.sessions.begin() as s:
        forget = {"tenant_id": T, "customer_ids": ["R"]}
        await forget_moves(s, META, **forget)
        assert await forget_in_set_aside(s, CARDS, ["credit", "referrer"], **forget) == 1
        assert await forget_in_set_aside(s, CARDS, ["credit", "more", "by"], **forget) == 1
        assert await forget_in_set_aside(s, CARDS, ["referrer_id"], blank=None, **forget) == 1
        assert await forget_in_set_aside(s, CARDS, ["credit", "referrer"], **forget) == 0
    async with database.sessions.begin() as s:
        await give_back_customer(
            s, META, tenant_id=T, merge_id="m-1", restored_id="B", survivor_id="A"
        )
        back = (await s.execute(select(CARDS).where(CARDS.c.id == 2))).mappings().one()
        assert (back["customer_id"], back["referrer_id"]) == ("B", None)
        assert back["credit"] == {"referrer": "", "code": "C-1", "more": {"by": ""}}
        kept = (await s.execute(select(MOVES.c.row_data).where(MOVES.c.merge_id == "m-2"))).one()
        assert kept.row_data["credit"] == {"referrer": "S"}  # another referrer's copy stays
