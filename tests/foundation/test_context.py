"""The app context's handles: found by type, one per type, a clear error when missing."""

from __future__ import annotations

import pytest

from ioc.context import Handles


class Hub:
    pass


class Delivery:
    pass


def test_a_handle_is_found_by_its_type() -> None:
    handles = Handles()
    hub = Hub()
    handles.add(hub)
    assert handles.get(Hub) is hub
    assert handles.find(Hub) is hub
    assert handles.find(Delivery) is None
    with pytest.raises(LookupError, match="no Delivery"):
        handles.get(Delivery)


def test_a_second_handle_of_a_type_is_a_bug() -> None:
    handles = Handles()
    handles.add(Hub())
    with pytest.raises(ValueError, match="already holds a Hub"):
        handles.add(Hub())
