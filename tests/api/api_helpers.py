"""Helpers shared by the API and console tests."""


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
