"""Money and order items: the accepted currencies and the checks of amounts and items (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion.common import optional
from loopkit.errors import InvalidArgument

MAX_ITEMS = 200
MAX_AMOUNT = 10**15
# ISO 4217 codes the platform accepts (the markets WeChat sells in, and the majors).
CURRENCIES = frozenset(
    [
        "CNY",
        "HKD",
        "MOP",
        "TWD",
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "KRW",
        "SGD",
        "MYR",
        "THB",
        "AUD",
        "NZD",
        "CAD",
        "CHF",
    ]
)


@dataclass(frozen=True)
class Money:
    currency: str
    amount_minor: int


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    quantity: int
    unit_price: Money
    category: str = ""


def validate_money(money: Money, field: str, *, allow_zero: bool = True) -> Money:
    currency = money.currency.strip().upper()
    if currency not in CURRENCIES:
        raise InvalidArgument(f"unknown currency {money.currency!r}", field=f"{field}.currency")
    if money.amount_minor < 0:
        raise InvalidArgument("must not be negative", field=f"{field}.amount_minor")
    if money.amount_minor == 0 and not allow_zero:
        raise InvalidArgument("must be positive", field=f"{field}.amount_minor")
    if money.amount_minor > MAX_AMOUNT:
        raise InvalidArgument("is too large", field=f"{field}.amount_minor")
    return Money(currency, money.amount_minor)


def validate_items(items: Sequence[Item], currency: str) -> list[dict[str, Any]]:
    if len(items) > MAX_ITEMS:
        raise InvalidArgument(f"at most {MAX_ITEMS} items", field="items")
    out = []
    for i, item in enumerate(items):
        name = f"items[{i}]"
        if item.quantity <= 0:
            raise InvalidArgument("must be positive", field=f"{name}.quantity")
        price = validate_money(item.unit_price, f"{name}.unit_price")
        if price.currency != currency:
            raise InvalidArgument("must be the order's currency", field=f"{name}.unit_price")
        out.append(
            {
                "sku": optional(item.sku, f"{name}.sku", max_len=128),
                "name": optional(item.name, f"{name}.name"),
                "quantity": item.quantity,
                "currency": currency,
                "unit_price_minor": price.amount_minor,
                "category": optional(item.category, f"{name}.category", max_len=128),
            }
        )
    return out


def items_to_pb(items: Sequence[dict[str, Any]]) -> list[ev.OrderItem]:
    return [
        ev.OrderItem(
            sku=i["sku"],
            name=i["name"],
            quantity=i["quantity"],
            unit_price=common_pb2.Money(currency=i["currency"], amount_minor=i["unit_price_minor"]),
            category=i.get("category", ""),
        )
        for i in items
    ]


def money_pb(currency: str, amount: int) -> common_pb2.Money:
    return common_pb2.Money(currency=currency, amount_minor=amount)
