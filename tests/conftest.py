"""Shared fixtures. Ray starts once per test session: start-up costs seconds here."""

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance with two CPUs, shared by every test that needs Ray."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
