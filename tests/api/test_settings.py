"""Settings: backend selection, Cassandra contact points and replication, the JWT secret rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings


def test_backend_is_chosen_by_cassandra_hosts() -> None:
    assert Settings().backend == "embedded"
    assert Settings(redis_url="redis://x").backend == "embedded"
    production = Settings(redis_url="redis://x", cassandra_hosts=" a , b:9043 ,")
    assert production.backend == "production"
    assert production.cassandra_host_list() == ["a", "b:9043"]


def test_replication_maps() -> None:
    assert Settings().replication() == {"class": "SimpleStrategy", "replication_factor": 1}
    nts = Settings(cassandra_replication="NetworkTopologyStrategy:dc1=3, dc2=2")
    assert nts.replication() == {"class": "NetworkTopologyStrategy", "dc1": 3, "dc2": 2}
    for bad in ("NetworkTopologyStrategy", "Everywhere:3", "SimpleStrategy:x"):
        with pytest.raises(ValueError):
            Settings(cassandra_replication=bad).replication()


def test_jwt_secret_is_required_and_long_outside_the_embedded_default(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="required"):
        Settings(data_dir=tmp_path, redis_url="redis://x").resolve_jwt_secret()
    with pytest.raises(ValueError, match="32"):
        Settings(data_dir=tmp_path, jwt_secret="short").resolve_jwt_secret()
    embedded = Settings(data_dir=tmp_path)
    assert embedded.resolve_jwt_secret() == embedded.resolve_jwt_secret()  # kept in the dir
    assert len(embedded.resolve_jwt_secret()) >= 32
