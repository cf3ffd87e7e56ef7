"""One spec grammar and one registry serve policies, discussants, models, environments and kinds."""

import pytest

import pnyx.envs
from pnyx.agents import POLICIES, make_policy
from pnyx.agents.discussants import DISCUSSANTS, Oracle
from pnyx.agents.llm import MODELS, ScriptedModel
from pnyx.agents.strategies import MemoryOne, TitForTat
from pnyx.errors import PnyxError
from pnyx.experiments.catalog import KINDS
from pnyx.registry import Registry
from pnyx.specs import Spec, parse, split_list


@pytest.mark.parametrize("text, expected", [
    ("tft", Spec("tft", "tft")),
    ("memory_one(0.9, 0.1, 0.8, 0.2, 1)", Spec("memory_one(0.9, 0.1, 0.8, 0.2, 1)", "memory_one", None,
                                              (0.9, 0.1, 0.8, 0.2, 1))),
    ("llm(persona=confident, model=openai:gpt-4o-mini)",
     Spec("llm(persona=confident, model=openai:gpt-4o-mini)", "llm", None, (),
          {"persona": "confident", "model": "openai:gpt-4o-mini"})),
    ("pkg.mod:Class(1, x=[1, 2])", Spec("pkg.mod:Class(1, x=[1, 2])", "pkg.mod", "Class", (1,), {"x": [1, 2]})),
    ("transformers:/models/smol-135m", Spec("transformers:/models/smol-135m", "transformers", "/models/smol-135m")),
    ("openai:gpt-4o(max_concurrency=4)", Spec("openai:gpt-4o(max_concurrency=4)", "openai", "gpt-4o", (),
                                            {"max_concurrency": 4})),
    ("weis-ipd", Spec("weis-ipd", "weis-ipd")),
])
def test_parse(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("text, message", [
    ("tft(", "unbalanced parentheses"),
    ("9lives", "malformed spec '9lives'"),
    ("random(__import__('os').system('x'))", "argument \"__import__('os').system('x')\" is not a literal"),
    ("random(1 + 2)", "argument '1 + 2' is not a literal"),
    ("memory_one(p=1, 0.5)", "positional argument '0.5' after a keyword argument"),
    ("a(b))", "unbalanced ')'"),
])
def test_parse_errors_name_the_token(text, message):
    with pytest.raises(PnyxError) as error:
        parse(text)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_split_list():
    assert split_list("tft, memory_one(0.9,0.1,0.8,0.2,1),alld") == ["tft", "memory_one(0.9,0.1,0.8,0.2,1)", "alld"]
    assert split_list("llm(system='a, b'),oracle") == ["llm(system='a, b')", "oracle"]
    with pytest.raises(PnyxError, match="empty spec"):
        split_list("tft,,alld")


def test_every_named_thing_uses_the_one_registry():
    for registry in [POLICIES, DISCUSSANTS, MODELS, pnyx.envs.ENVIRONMENTS, KINDS]:
        assert isinstance(registry, Registry)
    assert {"tft", "memory_one", "zd_extort"} <= set(POLICIES.names())
    assert {"llm", "oracle", "conformist"} <= set(DISCUSSANTS.names())
    assert {"embedded", "openai", "transformers", "scripted"} <= set(MODELS.names())
    assert {"ipd", "public_goods", "group_reasoning", "goal_guarding"} <= set(pnyx.envs.names())
    assert {"tournament", "suite", "weis-ipd", "coral-agreement"} <= set(KINDS.names())


def test_registries_build_from_specs():
    assert isinstance(make_policy("tft"), TitForTat)
    assert isinstance(make_policy("pnyx.agents.strategies:MemoryOne(1, 0, 1, 0, 1)"), MemoryOne)
    assert isinstance(DISCUSSANTS.make("pnyx.agents.discussants:Oracle"), Oracle)
    assert isinstance(MODELS.make("scripted"), ScriptedModel)
    assert pnyx.envs.module("ipd").__name__ == "pnyx.envs.ipd_v0"


@pytest.mark.parametrize("registry, spec, message", [
    (POLICIES, "builtins:exec('open(\"x\", \"w\")')", "must name a class, not a builtin_function_or_method"),
    (POLICIES, "os:system('touch x')", "must name a class"),
    (POLICIES, "os:abort", "must name a class"),
    (POLICIES, "collections:OrderedDict", "lacks the policy methods (reset/act or reset_batch/act_batch)"),
    (MODELS, "subprocess:Popen", "lacks the model methods (complete)"),
    (DISCUSSANTS, "pnyx.agents.strategies:TitForTat", "lacks the discussant methods (respond or messages)"),
    (pnyx.envs.ENVIRONMENTS, "os:system", "unknown environment 'os'"),
    (KINDS, "os:system", "unknown experiment kind 'os'"),
    (POLICIES, "nope", "unknown policy 'nope'"),
])
def test_a_spec_never_calls_what_is_not_a_protocol_class(registry, spec, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PnyxError) as error:
        registry.make(spec)
    assert message in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_register_and_describe():
    registry = Registry("widget", protocols=[("spin",)])

    class Top:
        """Spins.

        More text."""

        def __init__(self, speed=1):
            self.speed = speed

        def spin(self):
            return self.speed

    registry.register("top", Top)
    registry.register("lazy", "pnyx.agents.strategies:TitForTat", description="a lazy one")
    assert registry.names() == ["lazy", "top"]
    assert registry.describe() == {"lazy": "a lazy one", "top": "Spins."}
    assert registry.make("top(speed=3)").spin() == 3
    with pytest.raises(PnyxError, match=r"widget 'top\(fast=3\)': bad arguments"):
        registry.make("top(fast=3)")
    with pytest.raises(PnyxError, match="must be a plain name"):
        registry.register("a(b)", Top)
