from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from tests.helpers import Api, World, make_world
from tests.worker.handlers import Runners


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


@pytest.fixture
async def runners(app: Starlette) -> AsyncIterator[Runners]:
    started = Runners(app.state.services.broker)
    try:
        yield started
    finally:
        await started.stop_all()
