"""Helpers shared by the API and console tests."""

from decimal import Decimal

PRICES = {"VTI": Decimal("250"), "BND": Decimal("72.5"), "TIP": Decimal("110")}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
