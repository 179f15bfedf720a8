"""Object-store helpers that need no server: names, keys, and secrets kept out of reprs."""

from __future__ import annotations

import pytest

from appliance import errors, objectstore


@pytest.mark.parametrize("name", ["data", "my-bucket.v2", "abc"])
def test_valid_buckets(name: str) -> None:
    assert objectstore.validate_bucket(name) == name


@pytest.mark.parametrize("name", ["ab", "Data", "-x-", "a_b", ""])
def test_invalid_buckets(name: str) -> None:
    with pytest.raises(errors.UsageError):
        objectstore.validate_bucket(name)


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", ".."])
def test_invalid_keys(key: str) -> None:
    with pytest.raises(errors.UsageError):
        objectstore.validate_key(key)


def test_target_repr_hides_the_secret() -> None:
    target = objectstore.Target("http://127.0.0.1:9000", "odh-key", "very-secret")
    assert "very-secret" not in repr(target) and "odh-key" in repr(target)


def test_object_names() -> None:
    assert objectstore.Object("b", "a/b/c.csv", 1, None).name == "c.csv"
    assert objectstore.Object("b", "a/b/", 0, None, is_dir=True).name == "b/"


def test_bad_endpoint_is_a_usage_error() -> None:
    with pytest.raises(errors.UsageError):
        objectstore.client(objectstore.Target("ftp://x", "a", "b"))
