"""The `broker` fixture: every contract test runs against both adapters."""

from __future__ import annotations

import pytest

from conftest_helpers import alpaca, replay, simulated


@pytest.fixture(params=["simulated", "alpaca"])
def broker(request, tmp_path):
    """The same test against both adapters; Alpaca replays `contract_<test name>.yaml` and
    must use every recorded interaction."""
    if request.param == "simulated":
        yield simulated(tmp=tmp_path)
        return
    name = request.node.originalname.removeprefix("test_")
    with replay.use_cassette(f"contract_{name}.yaml", allow_playback_repeats=False) as cassette:
        yield alpaca()
        assert cassette.all_played, f"unused interactions in contract_{name}.yaml"
