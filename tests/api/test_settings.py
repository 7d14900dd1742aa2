"""Settings: backend selection, Cassandra contact points and replication, the JWT secret rule."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.cli import main
from api.settings import Settings
from api.wiring import open_services


def test_one_backend_setting_and_mixed_configurations_are_refused() -> None:
    assert Settings().backend == "embedded"
    production = Settings(redis_url="redis://x", cassandra_hosts=" a , b:9043 ,")
    assert production.backend == "production"
    assert production.cassandra_host_list() == ["a", "b:9043"]
    assert Settings(backend="production", redis_url="redis://x",
                    cassandra_hosts="a").backend == "production"
    with pytest.raises(ValidationError, match="needs MESSENGER_CASSANDRA_HOSTS"):
        Settings(redis_url="redis://x")  # Redis alone is no backend
    with pytest.raises(ValidationError, match="needs MESSENGER_REDIS_URL and MESSENGER_CASS"):
        Settings(backend="production")
    with pytest.raises(ValidationError, match="set MESSENGER_BACKEND=production, or unset"):
        Settings(backend="embedded", cassandra_hosts="a")
    with pytest.raises(ValidationError, match="needs the production backend"):
        Settings(workers=2)
    assert Settings(workers=2, redis_url="redis://x", cassandra_hosts="a").workers == 2


def test_a_mixed_configuration_stops_the_command_with_what_to_set(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSENGER_REDIS_URL", "redis://x")
    with pytest.raises(SystemExit) as stop:
        main(["serve"])
    assert "invalid configuration" in str(stop.value)
    assert "MESSENGER_CASSANDRA_HOSTS" in str(stop.value)


def test_replication_maps() -> None:
    assert Settings().replication() == {"class": "SimpleStrategy", "replication_factor": 1}
    nts = Settings(cassandra_replication="NetworkTopologyStrategy:dc1=3, dc2=2")
    assert nts.replication() == {"class": "NetworkTopologyStrategy", "dc1": 3, "dc2": 2}
    for bad in ("NetworkTopologyStrategy", "Everywhere:3", "SimpleStrategy:x"):
        with pytest.raises(ValueError):
            Settings(cassandra_replication=bad).replication()


def test_jwt_secret_is_required_and_long_outside_the_embedded_default(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="required"):
        Settings(data_dir=tmp_path, redis_url="redis://x",
                 cassandra_hosts="a").resolve_jwt_secret()
    with pytest.raises(ValueError, match="32"):
        Settings(data_dir=tmp_path, jwt_secret="short").resolve_jwt_secret()
    embedded = Settings(data_dir=tmp_path)
    assert embedded.resolve_jwt_secret() == embedded.resolve_jwt_secret()  # kept in the dir
    assert len(embedded.resolve_jwt_secret()) >= 32


def test_the_ack_window_is_seconds_zero_turning_it_off() -> None:
    assert Settings().ack_window_s == 10
    assert Settings(ack_window_s=0.5).ack_window_s == 0.5
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValidationError, match="ack_window_s"):
            Settings(ack_window_s=bad)


@pytest.mark.parametrize(("window_s", "watched"), [(0, False), (0.25, True)])
async def test_live_deliveries_are_watched_unless_the_window_is_zero(
    tmp_path: Path, window_s: float, watched: bool
) -> None:
    settings = Settings(data_dir=tmp_path, push_workers=0, ack_window_s=window_s)
    async with AsyncExitStack() as stack:
        services = await open_services(settings, stack)
        unacked = services.gateway.unacked
        assert (unacked is not None) is watched
        if unacked is not None:
            assert unacked.window_ms == 250
