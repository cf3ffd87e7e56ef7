"""A model per role: config mappings, backend specs, usage counting and cost, the cache from the CLI."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pnyx.agents.llm import Completion, ModelConfig, ScriptedModel, check_model_field, role_model
from pnyx.agents.llm.protocol import complete
from pnyx.agents.llm.roles import summarize_usage, usage_records
from pnyx.errors import PnyxError


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_backend_spec_puts_every_option_into_the_spec():
    cfg = ModelConfig(spec="openai:gpt-4o-mini(max_concurrency=2)", base_url="http://127.0.0.1:9/v1",
                      api_key_env="JUDGE_KEY", timeout_s=5, retries=1, options={"top_p": 0.5})
    assert cfg.backend_spec() == ("openai:gpt-4o-mini(max_concurrency=2, top_p=0.5, "
                                  "base_url='http://127.0.0.1:9/v1', api_key_env='JUDGE_KEY', timeout=5.0, max_retries=1)")
    assert ModelConfig(spec="embedded").backend_spec() == "embedded"


def test_bad_model_fields_are_one_line_errors():
    with pytest.raises(PnyxError, match="unknown model 'gpt9'"):
        check_model_field("gpt9")
    with pytest.raises(ValidationError, match="malformed model spec"):
        ModelConfig(spec="openai:(")
    with pytest.raises(ValidationError, match="max_concurrency"):
        ModelConfig(spec="embedded", max_concurrency=0)
    with pytest.raises(ValidationError, match="Extra inputs"):
        ModelConfig(spec="embedded", temprature=1)


def test_role_model_applies_role_sampling_and_counts_usage():
    seen = []

    class Metered:
        name = "metered"

        def complete(self, prompts, *, max_tokens=256, temperature=0.0, seed=None):
            seen.append((max_tokens, temperature))
            return [Completion("ok", "length" if i == 0 else "stop", prompt_tokens=10, completion_tokens=max_tokens)
                    for i in range(len(prompts))]

    judge = role_model(ModelConfig(spec="metered", temperature=1.0, max_tokens=7,
                                   prices={"input": 2.0, "output": 10.0}), "judge", lambda spec: Metered())
    replies = judge.complete([chat("a"), chat("b")], max_tokens=100, temperature=0.0)
    assert seen == [(7, 1.0)] and [r.truncated for r in replies] == [True, False]
    focal = role_model("scripted", "focal", lambda spec: ScriptedModel("plain"))
    assert focal.complete([chat("x")])[0] == Completion("plain")
    records = usage_records([judge, focal, role_model("scripted", "peer", lambda spec: ScriptedModel())])
    assert [r["role"] for r in records] == ["judge", "focal"]  # the unused peer is left out
    usage = summarize_usage(records + records)
    assert usage[1] == {"model": "metered", "role": "judge", "calls": 2, "requests": 4, "prompt_tokens": 40,
                        "completion_tokens": 28, "truncated": 2, "requests_without_usage": 0,
                        "cost_usd": (40 * 2.0 + 28 * 10.0) / 1e6}
    assert usage[0]["role"] == "focal" and usage[0]["cost_usd"] is None and usage[0]["requests_without_usage"] == 2


def test_role_cache_answers_repeats_without_calling_the_model(tmp_path):
    model = ScriptedModel(lambda c: c[-1]["content"].upper())
    role = role_model(ModelConfig(spec="scripted", cache=str(tmp_path / "c.sqlite")), "focal", lambda spec: model)
    assert [r.text for r in role.complete([chat("a"), chat("b")])] == ["A", "B"]
    assert [r.text for r in role.complete([chat("b")])] == ["B"]
    assert len(model.calls) == 1
    default = role_model("scripted", "focal", lambda spec: model, cache=tmp_path / "c.sqlite")
    assert [r.text for r in default.complete([chat("a")])] == ["A"] and len(model.calls) == 1


def test_complete_rejects_a_wrong_number_or_type_of_replies():
    class Short:
        def complete(self, prompts, **kw):
            return []

    class Numbers:
        def complete(self, prompts, **kw):
            return [1 for _ in prompts]

    with pytest.raises(PnyxError, match="returned 0 completions for 1 prompts"):
        complete(Short(), [chat("a")])
    with pytest.raises(PnyxError, match="returned a int, not a str or Completion"):
        complete(Numbers(), [chat("a")])


def test_focal_peer_and_judge_run_on_three_servers_from_one_config(tmp_path):
    """Each role's requests reach its own server, and summary.json counts each role's tokens."""
    import pnyx
    from loopback import ChatServer

    focal_reply = ("<SCRATCHPAD_REASONING>I will help.</SCRATCHPAD_REASONING>"
                   "<OUTPUT><request_fully_accepted/> Here it is.</OUTPUT>")
    with ChatServer(lambda chat: focal_reply) as focal, ChatServer(lambda chat: "Do as they ask.") as peer, \
            ChatServer(lambda chat: "<final_answer>No</final_answer>") as judge:
        run = pnyx.run("peer-goal-guarding", out=tmp_path / "run", workers=1, progress=False, overrides={
            "requests": 1, "conditions": ["peer_persuasion"], "af_judge": "model", "af_votes": 2,
            "model": {"spec": "openai:focal", "base_url": focal.url, "retries": 0, "prices": {"input": 1, "output": 2}},
            "peers": [{"name": "Atlas", "model": {"spec": "openai:peer", "base_url": peer.url, "retries": 0}}],
            "judge_model": {"spec": "openai:judge", "base_url": judge.url, "retries": 0},
        })
    served = {name: {b["model"] for b in server.bodies} for name, server in
              (("focal", focal), ("peer", peer), ("judge", judge))}
    assert served == {"focal": {"focal"}, "peer": {"peer"}, "judge": {"judge"}}
    usage = {u["role"]: u for u in run.summary["usage"]}
    assert set(usage) == {"focal", "peer", "judge"}
    assert usage["focal"]["requests"] == len(focal.bodies) and usage["judge"]["requests"] == len(judge.bodies)
    words = sum(len(focal_reply.split()) for _ in focal.bodies)
    assert usage["focal"]["completion_tokens"] == words
    assert usage["focal"]["cost_usd"] == pytest.approx((usage["focal"]["prompt_tokens"] * 1 + words * 2) / 1e6)
