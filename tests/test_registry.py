"""The registries behind models, scenes, kinds, methods and claims: names are
unique, and an unknown one is an error listing the known ones."""

from dataclasses import dataclass

import pytest

from hsilib.registry import Registry


@dataclass(frozen=True)
class Thing:
    name: str
    size: int = 0


def test_a_name_is_registered_once_and_the_same_item_again_changes_nothing():
    things = Registry("thing", items=[Thing("a"), Thing("b")])
    assert list(things) == ["a", "b"]
    assert things.add(Thing("a")) == Thing("a")  # an equal item: a module imported twice
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        things.add(Thing("a", size=1))
    assert things["a"] == Thing("a")
    assert things.add(Thing("c"), name="third") is things["third"]


@pytest.mark.parametrize("name", ["z", ["a"]])
def test_an_unknown_name_raises_the_registrys_error_listing_the_known_ones(name):
    class UnknownThing(KeyError):
        pass

    things = Registry("thing", UnknownThing, [Thing("a"), Thing("b")])
    with pytest.raises(UnknownThing, match=r"unknown thing .*; known: a, b"):
        things.find(name)
    assert things.find("b") == Thing("b")
