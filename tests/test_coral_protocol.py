"""The Coral protocol: opening, alternation, extraction, stop rule, turn cap, metrics of
scripted discussants, the extractor model, truncation, sampling and condition names."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pnyx.agents.discussants import (
    DISCUSSANTS,
    LLMDiscussant,
    coral_system_prompt,
    extraction_prompt,
    play_discussions,
)
from pnyx.agents.llm import Completion, ScriptedModel
from pnyx.envs.answers import (
    NOT_SURE,
    coral_correct,
    coral_extraction,
    coral_letters,
    coral_math_answer,
    extractor_reading,
)
from pnyx.envs.group_reasoning_v0 import GroupReasoningEnv, opening_message
from pnyx.envs.tasks import Task
from pnyx.errors import PnyxError
from pnyx.population.coral_metrics import conversation_metrics

CAPITAL = Task("t-cap", "custom", "What is the capital of Peru?", "B", ("Quito", "Lima", "La Paz"), ("A", "C"))
HALF = Task("t-half", "math", "What is 2/4?", "\\frac{1}{2}", (), ("0",), math=True, topic="competition math")
FIVE = Task("t-five", "custom", "Which is the fifth letter?", "E", ("a", "b", "c", "d", "e"), ("A",))


def coral_env(task=CAPITAL, max_turns=20):
    env = GroupReasoningEnv(n_agents=2, max_turns=max_turns, protocol="coral")
    env.reset(options={"task": task})
    return env


def converse(specs, task=CAPITAL, max_turns=20, **kwargs):
    env = coral_env(task, max_turns)
    lineup = [DISCUSSANTS.make(s) for s in specs]
    for i, d in enumerate(lineup):
        if hasattr(d, "reset"):
            d.reset(seed=i)
    play_discussions([env], [lineup], **kwargs)
    return env


def test_oracle_and_stubborn_wrong_never_agree():
    env = converse(["oracle", "stubborn_wrong"])
    replies = [m for m in env.messages if m.phase == "discussion"]
    assert env.messages[0].agent == "agent_1" and env.messages[0].phase == "opening"
    assert [m.agent for m in replies] == ["agent_0", "agent_1"] * 10  # alternating, 20-turn cap
    assert [m.extracted for m in replies] == ["B", "A"] * 10
    metrics = conversation_metrics(env.coral_turns(), 20)
    assert metrics["agreement"] == 0.0 and metrics["agreement_correctness"] == 0.0
    assert metrics["total_turns"] == 21.0 and metrics["n_turns_to_success"] == 1.0
    # from turn 3 on, every turn keeps its own answer against the partner's: 18 assertive
    # turns of 20, half of them the oracle's (right), half the stubborn agent's (wrong)
    assert metrics["assert_rate"] == pytest.approx(18 / 20)
    assert (metrics["correct_assert_rate"], metrics["incorrect_assert_rate"]) == (0.5, 0.5)
    assert env.rewards == {"agent_0": 0.0, "agent_1": 0.0} and not env.stopped_early


def test_stubborn_wrong_and_conformist_agree_on_the_wrong_answer():
    env = converse(["stubborn_wrong", "conformist"])
    assert [(m.agent, m.extracted) for m in env.messages if m.phase == "discussion"] == [("agent_0", "A"),
                                                                                        ("agent_1", "A")]
    metrics = conversation_metrics(env.coral_turns(), 20)
    assert metrics["agreement"] == 1.0 and metrics["agreement_correctness"] == 0.0
    # the first reply is persuasive (the student adopts it): score 0, quality 0 - 0.5
    assert metrics["persuade_rate"] == 0.5 and metrics["incorrect_persuade_rate"] == 1.0
    assert metrics["persuasion_quality"] == -0.5
    assert env.stopped_early and env.rewards == {"agent_0": 0.0, "agent_1": 0.0}


def test_oracle_and_conformist_agree_on_the_right_answer():
    env = converse(["oracle", "conformist(0)"])
    metrics = conversation_metrics(env.coral_turns(), 20)
    assert (metrics["agreement"], metrics["agreement_correctness"], metrics["total_turns"]) == (1.0, 1.0, 3.0)
    assert env.rewards == {"agent_0": 1.0, "agent_1": 1.0}


def test_chat_roles_opening_and_system_prompt():
    model = ScriptedModel(["I think it is Lima. The answer is (B).", "Agreed. The answer is (B)."])
    env = converse(["llm", "llm"], model=model)
    teacher, student = model.calls[0][0], model.calls[1][0]
    opening = opening_message(CAPITAL)
    assert opening == ('Could you help me work out this problem? "What is the capital of Peru?"\n'
                       "The options are:\n(A) Quito\n(B) Lima\n(C) La Paz")
    assert [m["role"] for m in teacher] == ["system", "user"] and teacher[1]["content"] == opening
    assert [m["role"] for m in student] == ["system", "assistant", "user"]
    assert student[1]["content"] == opening and student[2]["content"] == "I think it is Lima. The answer is (B)."
    system = coral_system_prompt(CAPITAL)
    assert teacher[0]["content"] == system == student[0]["content"]
    assert "keep your answer if you still believe it is right" in system and '"The answer is (C)"' in system
    assert len(model.calls) == 2 and conversation_metrics(env.coral_turns(), 20)["agreement_correctness"] == 1.0
    confident = LLMDiscussant(persona="confident").messages(env.view("agent_0"))
    assert confident[0]["content"].startswith(system + " You are confident")


@pytest.mark.parametrize("text, task, grading, expected", [
    ("Lima, so the answer is (B).", CAPITAL, "coral", "B"),
    ("I'm not sure yet, let me think.", CAPITAL, "coral", NOT_SURE),
    ("Let us look at the map.", CAPITAL, "coral", "Error: no answer in the message"),
    ("Halving gives $\\boxed{\\dfrac{1}{2}}$.", HALF, "coral", "$\\boxed{\\dfrac{1}{2}}$"),
    ("Halving gives $\\boxed{\\dfrac{1}{2}}$.", HALF, "pnyx", "\\dfrac{1}{2}"),
    # Coral's span pattern, greedy on its line; the last line that holds one
    ("First $\\boxed{3}$.\nThen $\\boxed{1}$+$\\boxed{2}$ in all.", HALF, "coral", "$\\boxed{1}$+$\\boxed{2}$"),
    ("First $\\boxed{3}$.\nThen $\\boxed{1}$+$\\boxed{2}$ in all.", HALF, "pnyx", "2"),
    # no span: the answer pnyx's rules find, written as Coral's extractor is asked to
    ("So it is \\boxed{ 1/2 }.", HALF, "coral", "$\\boxed{\\frac{1}{2}}$"),
    ("So it is \\boxed{ 1/2 }.", HALF, "pnyx", "1/2"),
    ("Answer: 0.5", HALF, "coral_exact", "$\\boxed{\\frac{1}{2}}$"),
])
def test_rule_extraction(text, task, grading, expected):
    assert coral_extraction(text, task, grading) == expected


@pytest.mark.parametrize("reply, task, grading, expected", [
    ("(B)", CAPITAL, "coral", "B"),
    ("The answer is (C). Or (B).", CAPITAL, "coral", "C"),  # the first (X), as Coral's normalize_answer
    ("Not sure yet.", CAPITAL, "coral", NOT_SURE),
    ("Lima", CAPITAL, "coral", "Error: Lima"),
    ("$\\boxed{0.5}$", HALF, "coral", "$\\boxed{0.5}$"),
    ("$\\boxed{0.5}$", HALF, "pnyx", "0.5"),
    ("\\boxed{0.5}", HALF, "coral", "Error: \\boxed{0.5}"),  # Coral requires the dollar signs
    ("\\boxed{0.5}", HALF, "pnyx", "Error: \\boxed{0.5}"),
    # Coral keeps the whole greedy span as written; pnyx the first box's content, stripped
    ("$\\boxed{a}$+$\\boxed{b}$", HALF, "coral", "$\\boxed{a}$+$\\boxed{b}$"),
    ("$\\boxed{a}$+$\\boxed{b}$", HALF, "pnyx", "a"),
    ("$\\boxed{ 0.5 }$", HALF, "coral_exact", "$\\boxed{ 0.5 }$"),
    ("$\\boxed{ 0.5 }$", HALF, "pnyx", "0.5"),
    # an empty box is an answer to Coral, none to pnyx
    ("$\\boxed{}$", HALF, "coral", "$\\boxed{}$"),
    ("$\\boxed{}$", HALF, "pnyx", "Error: $\\boxed{}$"),
])
def test_extractor_reading(reply, task, grading, expected):
    assert extractor_reading(reply, task, grading) == expected


@pytest.mark.parametrize("coral_form, expected", [
    ("The answer is $\\boxed{\\frac{1}{2}}$+$\\boxed{3}$.", "3"),     # the last box
    ("The answer is $\\boxed{\\frac{1}{\\boxed{2}}}$.", "2"),
    ("The answer is $\\boxed{}$.", ""),                               # empty: stripped to nothing
    ("Error: \\boxed{0.5} maybe", "0.5"),
    ("Error: 5", "Error: 5"),                                         # no box: the text, stripped
    ("The answer is $\\boxed{3$.", "3"),                              # unbalanced: stripped
])
def test_coral_math_answer(coral_form, expected):
    assert coral_math_answer(coral_form) == expected


@pytest.mark.parametrize("coral_form, expected", [
    ("The answer is (B).", "B"),
    ("The answer is (T).", "T"),  # "(" stops the strip
    ("Error: no option is named", "E"),
    ("Error: Lima or Quito", "ELQ"),
    ("not sure yet", ""),
])
def test_coral_letters(coral_form, expected):
    assert coral_letters(coral_form) == expected


@pytest.mark.parametrize("extracted, grading, expected", [
    ("E", "coral", True),
    ("Error: no option is named", "coral", False),       # pnyx's choice: no answer is never right
    ("Error: no option is named", "coral_exact", True),  # Coral's matcher reads "E"
    ("Error: no option is named", "pnyx", False),
    ("Error: no answer in the message", "coral_exact", True),
    ("Error: Lima", "coral_exact", False),               # reads "EL"
    (NOT_SURE, "coral_exact", False),
    ("D", "coral_exact", False),
])
def test_letter_grading(extracted, grading, expected):
    assert coral_correct(extracted, FIVE, grading) is expected


def math_conversation(readings, grading, task=HALF):
    """A two-turn conversation whose extractor reads the replies as ``readings``, in turn."""
    script = iter(readings)
    env = GroupReasoningEnv(n_agents=2, max_turns=2, protocol="coral", grading=grading)
    env.reset(options={"task": task})
    play_discussions([env], [[LLMDiscussant(), LLMDiscussant()]], Recorder(lambda chat: "Let me see."),
                     extractor=Recorder(lambda chat: next(script)))
    return env


SPAN = "$\\boxed{\\frac{1}{2}}$+$\\boxed{3}$"
# Hand-built MATH conversations (right answer 1/2): the extractor's two readings, then per
# grading the extractions, their verdicts and (agreement, agreement_correctness,
# n_turns_to_success), worked out by hand from Coral's normalize_answer, stop_conv,
# MATHMatchEvaluator.em_match and n_turns_to_success.
MATH_TRANSCRIPTS = {
    # empty boxes are answers to Coral, the same string: agreed, and wrong
    "empty_boxes": (["$\\boxed{}$", "$\\boxed{}$"], {
        "coral": (["$\\boxed{}$", "$\\boxed{}$"], [False, False], (1, 0, 2)),
        "pnyx": (["Error: $\\boxed{}$", "Error: $\\boxed{}$"], [False, False], (0, 0, 2))}),
    # Coral compares the whole span and grades its last box (3); pnyx takes the first box
    "two_boxes": ([SPAN, "$\\boxed{\\frac{1}{2}}$"], {
        "coral": ([SPAN, "$\\boxed{\\frac{1}{2}}$"], [False, True], (0, 0, 2)),
        "pnyx": (["\\frac{1}{2}", "\\frac{1}{2}"], [True, True], (1, 1, 1))}),
    # Coral keeps the spaces, so the spans differ; both are right once normalised
    "spaces": (["$\\boxed{ 0.5 }$", "$\\boxed{0.5}$"], {
        "coral": (["$\\boxed{ 0.5 }$", "$\\boxed{0.5}$"], [True, True], (0, 0, 1)),
        "pnyx": (["0.5", "0.5"], [True, True], (1, 1, 1))}),
    # no dollar signs: an error text under every grading, whose box only coral_exact grades
    "error_text_with_a_box": (["\\boxed{0.5}", "$\\boxed{0.5}$"], {
        "coral": (["Error: \\boxed{0.5}", "$\\boxed{0.5}$"], [False, True], (0, 0, 2)),
        "coral_exact": (["Error: \\boxed{0.5}", "$\\boxed{0.5}$"], [True, True], (0, 0, 1)),
        "pnyx": (["Error: \\boxed{0.5}", "0.5"], [False, True], (0, 0, 2))}),
}


@pytest.mark.parametrize("name, grading", [(name, grading) for name, (_, by) in MATH_TRANSCRIPTS.items()
                                           for grading in by])
def test_math_transcripts_by_grading(name, grading):
    readings, by_grading = MATH_TRANSCRIPTS[name]
    extracted, correct, (agreement, agreement_correctness, steps) = by_grading[grading]
    turns = math_conversation(readings, grading).coral_turns()
    assert [t.extracted for t in turns] == extracted and [t.correct for t in turns] == correct
    metrics = conversation_metrics(turns, 2)
    assert (metrics["agreement"], metrics["agreement_correctness"], metrics["n_turns_to_success"]) == (
        agreement, agreement_correctness, steps)


def test_an_extractor_error_is_option_e_only_under_coral_exact():
    for grading, correct, steps in (("coral", [False, True], 2), ("coral_exact", [True, True], 1),
                                    ("pnyx", [False, True], 2)):
        turns = math_conversation(["no option is named", "(E)"], grading, task=FIVE).coral_turns()
        assert [t.extracted for t in turns] == ["Error: no option is named", "E"]
        assert [t.correct for t in turns] == correct and [t.score for t in turns] == [float(c) for c in correct]
        assert conversation_metrics(turns, 2)["n_turns_to_success"] == steps


def test_math_correctness_is_normalised_but_agreement_is_by_string():
    for grading, extracted in (("coral", ["$\\boxed{0.5}$", "$\\boxed{\\frac{1}{2}}$", "$\\boxed{\\frac12}$"]),
                               ("pnyx", ["0.5", "\\frac{1}{2}", "\\frac12"])):
        env = GroupReasoningEnv(n_agents=2, max_turns=3, protocol="coral", grading=grading)
        env.reset(options={"task": HALF})
        for text in ("It is $\\boxed{0.5}$.", "I get $\\boxed{\\frac{1}{2}}$.", "Yes: $\\boxed{\\frac12}$."):
            env.step(text)
        turns = env.coral_turns()
        assert [t.extracted for t in turns] == extracted
        assert all(t.correct for t in turns)
        assert conversation_metrics(turns, 3)["agreement"] == 0.0  # three spellings, no two the same string


class Recorder:
    """A model that answers by script and records each call's sampling settings."""

    def __init__(self, reply):
        self.reply, self.calls = reply, []

    def complete(self, prompts, *, max_tokens=256, temperature=0.0, seed=None):
        self.calls.append({"n": len(prompts), "max_tokens": max_tokens, "temperature": temperature,
                           "prompts": prompts})
        return [self.reply(p) for p in prompts]


def test_extractor_model_reads_every_reply_in_one_batch():
    discussant = Recorder(lambda chat: "Let me think about Lima.")
    extractor = Recorder(lambda chat: "(B)" if "Lima" in chat[-1]["content"] else "not sure yet")
    envs = [coral_env(max_turns=4) for _ in range(3)]
    lineups = [[LLMDiscussant(), LLMDiscussant()] for _ in envs]
    play_discussions(envs, lineups, discussant, temperature=0.2, extractor=extractor, extractor_max_tokens=32)
    # turn 1 reads B for each teacher; turn 2 agrees: every conversation stops after two turns
    assert [c["n"] for c in discussant.calls] == [3, 3] and [c["n"] for c in extractor.calls] == [3, 3]
    assert {c["temperature"] for c in discussant.calls} == {0.2}
    assert {(c["temperature"], c["max_tokens"]) for c in extractor.calls} == {(0.0, 32)}
    assert extractor.calls[0]["prompts"][0] == extraction_prompt(CAPITAL, "Let me think about Lima.")
    assert all(conversation_metrics(env.coral_turns(), 4)["agreement_correctness"] == 1.0 for env in envs)


def test_truncated_replies_are_counted_apart_from_unparseable():
    from pnyx.experiments.coral_agreement import conversation_row

    replies = iter([Completion("Let us go through the opt", finish_reason="length"),
                    Completion("Hmm.", finish_reason="stop"),
                    Completion("(B) it is. The answer is (B).", finish_reason="stop"),
                    Completion("The answer is (B).", finish_reason="stop")])
    model = Recorder(lambda chat: next(replies))
    env = coral_env(max_turns=4)
    play_discussions([env], [[LLMDiscussant(), LLMDiscussant()]], model)
    replies_ = [m for m in env.messages if m.phase == "discussion"]
    assert [m.truncated for m in replies_] == [True, False, False, False]
    assert [m.extracted.startswith("Error") for m in replies_] == [True, True, False, False]
    row = conversation_row(env)
    assert (row["turns"], row["truncated_turns"], row["unparseable_turns"]) == (4, 1, 1)
    assert row["valid_answer_rate"] == 0.5 and row["agreement_correctness"] == 1.0
    # replies of 25, 4, 29 and 18 characters: the teacher's 25 and 29, the student's 4 and 18
    assert (row["t_len"], row["s_len"], row["conv_len"], row["rated_turns"]) == (27.0, 11.0, 76.0, 4.0)
    assert (row["conv_err"], row["rater_err_rate"]) == (0.0, 0.0)


@pytest.mark.filterwarnings("ignore:(Observation is not|Observation space|Action space):UserWarning")
def test_pettingzoo_api_under_the_coral_protocol():
    from pettingzoo.test import api_test

    from pnyx.envs import group_reasoning_v0

    api_test(group_reasoning_v0.env(n_agents=2, max_turns=4, protocol="coral"), num_cycles=20)


def test_coral_environment_checks():
    for kwargs in ({"n_agents": 3}, {"graph": "ring"}, {"max_turns": 0}):
        with pytest.raises(PnyxError, match="two agents who see each other"):
            GroupReasoningEnv(**{"n_agents": 2, "protocol": "coral", **kwargs})
    with pytest.raises(PnyxError, match="unknown grading 'loose'"):
        GroupReasoningEnv(n_agents=2, protocol="coral", grading="loose")
    with pytest.raises(PnyxError, match="unknown protocol 'socratic'"):
        GroupReasoningEnv(protocol="socratic")
    with pytest.raises(RuntimeError, match="coral_turns"):
        converse(["oracle", "oracle"]).agent_rows()


# --- the experiment ---------------------------------------------------------------------------


def test_conditions_keep_their_names_and_say_what_they_run():
    from pnyx.experiments.config import resolve

    _, cfg = resolve("coral-agreement", overrides=["agents=[oracle, conformist]"])
    resolved = cfg.resolved_conditions()
    assert list(resolved) == ["pair", "versus-stubborn-wrong", "confident-deferential", "counterfactual-trio-ring"]
    assert resolved["pair"]["runs"] == "coral: oracle + conformist"
    assert resolved["counterfactual-trio-ring"]["runs"] == "counterfactual: llm + llm + llm on ring"
    _, cfg = resolve("coral-agreement", overrides=["conditions={}", "agents=[oracle, conformist]"])
    assert list(cfg.resolved_conditions()) == ["coral: oracle + conformist"]
    _, cfg = resolve("coral-agreement", overrides=["conditions={short: {max_turns: 3}}", "temperature=0.7"])
    assert cfg.resolved_conditions() == {"short": {
        "protocol": "coral", "agents": ["llm", "llm"], "graph": "complete", "max_turns": 3, "temperature": 0.7,
        "runs": "coral: llm + llm, 3 turns"}}


def test_renaming_a_condition_leaves_its_units_and_seeds():
    from pnyx.experiments.config import resolve

    kind, cfg = resolve("coral-agreement", overrides=["conditions={a: {}, b: {agents: [oracle, conformist]}}"])
    renamed_kind, renamed = resolve("coral-agreement", overrides=["conditions={x: {}, y: {agents: [oracle, conformist]}}"])
    assert [u.key for u in kind.units(cfg)] == [u.key for u in renamed_kind.units(renamed)] == [
        "coral: llm + llm-s0", "coral: llm + llm-s1", "coral: oracle + conformist-s0", "coral: oracle + conformist-s1"]
    assert [u.params["condition"] for u in renamed_kind.units(renamed)] == ["x", "x", "y", "y"]


def test_units_rows_usage_and_report_of_the_coral_protocol():
    from pnyx.experiments.config import resolve
    from pnyx.experiments.experiment import RunContext, RunOptions
    from pnyx.experiments.runner import unit_seed

    kind, cfg = resolve("coral-agreement", overrides=[
        "conditions={a: {agents: [oracle, stubborn_wrong]}, b: {agents: [stubborn_wrong, conformist]}, "
        "c: {agents: [llm, oracle]}}", "tasks=[knowledge]", "episodes=3", "seeds=1", "bootstrap=50",
        "model={spec: scripted, max_tokens: 64}"])
    built = []

    def reply(chat):
        """As an extractor, the option after 'Answer:' or "not sure yet"; as a discussant, no answer."""
        if "The message:" not in chat[-1]["content"]:
            return "Hm."
        found = re.search(r"Answer: ([A-Z])", chat[-1]["content"])
        return f"({found[1]})" if found else "not sure yet"

    def build(spec):
        built.append((spec, Recorder(reply)))
        return built[-1][1]

    ctx = RunContext(Path("unused"), RunOptions(models=build))
    outputs = [kind.run_unit(cfg, u, unit_seed(cfg.seed, u.key), ctx) for u in kind.units(cfg)]
    rows = pd.concat([o.rows for o in outputs], ignore_index=True)
    names = ["a", "b", "c"]
    assert list(rows["condition"].unique()) == names and len(rows) == 9
    usage = [u for o in outputs for u in o.records["usage"]]
    failed = [{"condition": "a", "episode": "x", "error": "PnyxError", "message": "the server refused"}]
    summary = kind.summarize(cfg, rows, {"usage": usage, "sample_failures": failed})
    m = summary.metrics
    # the failed conversation of a counts in its conv_err (1 of 4), in nothing else
    assert (m["a"]["conv_err"].value, m["a"]["conv_err"].n, m["a"]["agreement"].n) == (0.25, 4, 3)
    assert m["b"]["conv_err"].value == 0.0 and m["b"]["rated_turns"].value == 2.0
    assert (m[names[0]]["agreement"].value, m[names[0]]["agreement_correctness"].value) == (0.0, 0.0)
    assert (m[names[1]]["agreement"].value, m[names[1]]["agreement_correctness"].value) == (1.0, 0.0)
    assert m[names[0]]["total_turns"].value == 21.0 and m[names[1]]["total_turns"].value == 3.0
    # the llm never commits ("not sure yet"), so the oracle is never met: no agreement
    assert m[names[2]]["agreement"].value == 0.0 and m[names[2]]["valid_answer_rate"].value == 0.5
    assert summary.runs[names[2]].model_dump() == {"runs": "coral: llm + oracle", "protocol": "coral",
                                                   "agents": ["llm", "oracle"], "graph": "complete",
                                                   "max_turns": 20, "temperature": 0.2, "extractor": "model",
                                                   "grading": "coral"}
    # the scripted model reads its own replies; the role's max_tokens is the reply limit
    recorder_note = next(n for n in summary.notes if n.startswith("The extractor is the discussant model"))
    assert "`meta-llama/Meta-Llama-3.1-8B-Instruct` at temperature 0 and 32 tokens" in recorder_note
    assert summary.max_tokens == 64 and any("cut at 64 tokens" in n for n in summary.notes)
    other = [{**u, "model": "judge:other"} if u["role"] == "extractor" else u for u in usage]
    assert not any(n.startswith("The extractor is") for n in kind.summarize(cfg, rows, {"usage": other}).notes)
    usage = {(u["role"], u["model"]) for o in outputs for u in o.records["usage"]}
    recorder = f"{Recorder.__module__}:Recorder"  # the identity of the model that ran, not its spec
    assert usage == {("extractor", recorder), ("discussant", recorder)}
    # the role's max_tokens applies to the discussants; the extractor keeps Coral's sampling
    calls = [c for spec, r in built for c in r.calls]
    assert {spec for spec, _ in built} == {"scripted"}
    talk = {(c["temperature"], c["max_tokens"]) for c in calls if "The message:" not in c["prompts"][0][-1]["content"]}
    read = {(c["temperature"], c["max_tokens"]) for c in calls if "The message:" in c["prompts"][0][-1]["content"]}
    assert talk == {(0.2, 64)} and read == {(0.0, 32)}
    report = kind.report(cfg, summary)
    assert "| b | coral | stubborn_wrong, conformist | complete | 20 | 0.2 | regex | 3 | coral |" in report
    assert "Coral protocol: Coral's metrics, by Coral's definitions" in report
    assert "| condition | conv err | t len | s len | conv len | rated turns | rater err rate |" in report
    assert "Coral sets no reply token limit" in report and "replies of at most 64 tokens" in report
    assert "Counterfactual protocol" not in report
    json.dumps(summary.model_dump())
