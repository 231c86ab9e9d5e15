import pytest

from tests.e2e.helpers import RAY_ACTORS


@pytest.fixture(params=["in-process", "ray"])
def hosting(request):
    """The same flows against both hostings of shards and dispatcher."""
    if request.param == "ray":
        request.getfixturevalue("ray_session")
    yield request.param
    import ray

    while RAY_ACTORS:  # each Ray actor is a process: leave none behind
        ray.kill(RAY_ACTORS.pop(), no_restart=True)
