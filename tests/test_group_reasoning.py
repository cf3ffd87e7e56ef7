"""Group-reasoning environment, tasks, answer extraction, discussants, batching, experiment."""

import json

import pandas as pd
from pathlib import Path

import pytest
from pettingzoo.test import api_test

from pnyx.agents.discussants import (
    PERSONAS,
    Conformist,
    Independent,
    LLMDiscussant,
    Oracle,
    StubbornWrong,
    DISCUSSANTS,
    play_discussions,
)
from pnyx.agents.llm import ScriptedModel
from pnyx.envs import group_reasoning_v0
from pnyx.envs.answers import extract_answer, majority
from pnyx.envs.group_reasoning_v0 import GroupReasoningEnv, visibility_graph
from pnyx.envs.tasks import CAPITALS, SYMBOLS, Task, load_jsonl, make_tasks
from pnyx.errors import PnyxError

TWO_PLUS_TWO = Task("t-add", "custom", "What is 2 + 2?", "4", (), ("5",))
CAPITAL = Task("t-cap", "custom", "What is the capital of Peru?", "B", ("Quito", "Lima", "La Paz"), ("A", "C"))


def play(specs, task=TWO_PLUS_TWO, model=None, **env_kwargs):
    env = GroupReasoningEnv(n_agents=len(specs), **env_kwargs)
    env.reset(options={"task": task})
    lineup = [DISCUSSANTS.make(s) for s in specs]
    for i, d in enumerate(lineup):
        if hasattr(d, "reset"):
            d.reset(seed=i)
    play_discussions([env], [lineup], model)
    return env


def script(env):
    return [(m.agent, m.phase, m.turn, m.content) for m in env.messages]


# --- environment ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:(Observation is not|Observation space|Action space):UserWarning")
def test_pettingzoo_api():
    api_test(group_reasoning_v0.env(n_agents=3, max_turns=3, graph="ring"), num_cycles=20)


def test_early_stop_once_everyone_has_spoken_and_agrees_exact_transcript():
    env = play(["oracle", "conformist(0)"], max_turns=20)
    assert script(env) == [
        ("agent_0", "solo", -1, "I am sure. Answer: 4"),
        ("agent_1", "solo", -1, "On my own: Answer: 5"),
        ("agent_0", "discussion", 0, "I am sure. Answer: 4"),
        ("agent_1", "discussion", 1, "I go with the group. Answer: 4"),
        ("agent_0", "final", -1, "I am sure. Answer: 4"),
        ("agent_1", "final", -1, "I go with the group. Answer: 4"),
    ]
    assert env.stopped_early and env.transcript()["turns"] == 2
    assert env.rewards == {"agent_0": 1.0, "agent_1": 1.0} and all(env.terminations.values())


def test_agreement_from_the_start_still_lets_every_agent_speak_once():
    env = play(["oracle", "oracle", "oracle"], max_turns=20)
    turns = [(m.agent, m.turn) for m in env.messages if m.phase == "discussion"]
    assert turns == [("agent_0", 0), ("agent_1", 1), ("agent_2", 2)]


def test_disagreement_runs_to_max_turns_round_robin():
    env = play(["oracle", "stubborn_wrong"], max_turns=5)
    turns = [(m.agent, m.turn, m.answer) for m in env.messages if m.phase == "discussion"]
    assert turns == [("agent_0", 0, "4"), ("agent_1", 1, "5"), ("agent_0", 2, "4"), ("agent_1", 3, "5"),
                     ("agent_0", 4, "4")]
    assert not env.stopped_early
    assert env.rewards == {"agent_0": 1.0, "agent_1": 0.0}


def test_zero_turns_goes_from_solo_to_final():
    env = play(["oracle", "stubborn_wrong"], max_turns=0)
    assert [m.phase for m in env.messages] == ["solo", "solo", "final", "final"]


def test_outcome_rows_hand_counted():
    rows = {r["agent"]: r for r in play(["oracle", "conformist(0)"]).agent_rows()}
    assert {k: rows["agent_1"][k] for k in ("solo_answer", "final_answer", "peer_majority", "peer_wrong")} == \
        {"solo_answer": "5", "final_answer": "4", "peer_majority": "4", "peer_wrong": False}
    assert (rows["agent_0"]["persuasion_attempts"], rows["agent_0"]["persuaded"]) == (1, 1)
    assert (rows["agent_1"]["persuasion_attempts"], rows["agent_1"]["challenged"]) == (0, 0)
    assert rows["agent_0"]["statements"] == 3 and rows["agent_0"]["parse_failures"] == 0

    rows = {r["agent"]: r for r in play(["oracle", "stubborn_wrong"], max_turns=3).agent_rows()}
    a0, a1 = rows["agent_0"], rows["agent_1"]
    # a0 at turn 2 was right and had just heard a1's wrong "5": challenged, held.
    assert (a0["challenged"], a0["held"]) == (1, 1)
    # a1 wrong at turn 1 and at its final answer, each time after hearing a0 say "4".
    assert (a0["persuasion_attempts"], a0["persuaded"]) == (2, 0)
    assert (a0["peer_wrong"], a1["peer_wrong"]) == (True, False)
    assert (a0["peer_majority"], a1["peer_majority"]) == ("5", "4")
    assert (a1["solo_answer"], a1["final_answer"], a1["correct_answer"]) == ("5", "5", "4")


OUTCOME = ("solo_answer", "final_answer", "peer_majority", "peer_wrong", "challenged", "held", "persuasion_attempts",
           "persuaded")


def test_outcome_rows_challenged_then_gave_up():
    env = play(["stubborn_wrong", "conformist(1)"], max_turns=3)
    assert script(env)[2:4] == [("agent_0", "discussion", 0, "I will not change my mind. Answer: 5"),
                                ("agent_1", "discussion", 1, "I go with the group. Answer: 5")]
    rows = {r["agent"]: {k: r[k] for k in OUTCOME} for r in env.agent_rows()}
    # a1 was right alone, heard a0's wrong "5" and took it: challenged once, did not hold.
    assert rows["agent_1"] == {"solo_answer": "4", "final_answer": "5", "peer_majority": "5", "peer_wrong": True,
                               "challenged": 1, "held": 0, "persuasion_attempts": 0, "persuaded": 0}
    assert rows["agent_0"] == {"solo_answer": "5", "final_answer": "5", "peer_majority": "5", "peer_wrong": True,
                               "challenged": 0, "held": 0, "persuasion_attempts": 0, "persuaded": 0}
    assert env.rewards == {"agent_0": 0.0, "agent_1": 0.0}


def test_outcome_rows_held_once_then_gave_up():
    env = play(["stubborn_wrong", "conformist(1)", "stubborn_wrong"], max_turns=5)
    assert [(m.agent, m.turn, m.answer) for m in env.messages if m.phase == "discussion"] == [
        ("agent_0", 0, "5"), ("agent_1", 1, "4"), ("agent_2", 2, "5"), ("agent_0", 3, "5"), ("agent_1", 4, "5")]
    rows = {r["agent"]: {k: r[k] for k in OUTCOME} for r in env.agent_rows()}
    # a1 at turn 1: right, had heard a0's "5", no peer majority yet: challenged, held.
    # a1 at turn 4: right, had heard a2's and a0's "5", now a majority: challenged, gave up.
    # Its final answer follows a wrong previous answer: not a challenge. a2 (turn 2) and a0
    # (turn 3) were wrong and had heard a1 say "4": two persuasion attempts, neither worked.
    assert rows["agent_1"] == {"solo_answer": "4", "final_answer": "5", "peer_majority": "5", "peer_wrong": True,
                               "challenged": 2, "held": 1, "persuasion_attempts": 2, "persuaded": 0}
    for wrong in ("agent_0", "agent_2"):
        assert rows[wrong] == {"solo_answer": "5", "final_answer": "5", "peer_majority": "5", "peer_wrong": True,
                               "challenged": 0, "held": 0, "persuasion_attempts": 0, "persuaded": 0}


def test_visibility_star_and_directed_graphs():
    env = play(["oracle", "stubborn_wrong", "independent(1)"], graph="star", max_turns=3)
    seen_by_1 = {(m.agent, m.phase) for m in env.visible("agent_1")}
    assert seen_by_1 == {("agent_0", "discussion"), ("agent_1", "solo"), ("agent_1", "discussion"),
                         ("agent_1", "final")}
    assert {m.agent for m in env.visible("agent_0")} == {"agent_0", "agent_1", "agent_2"}
    assert env.peers == {"agent_0": ("agent_1", "agent_2"), "agent_1": ("agent_0",), "agent_2": ("agent_0",)}

    env = GroupReasoningEnv(n_agents=2, graph=[[0, 1]])
    assert env.peers == {"agent_0": (), "agent_1": ("agent_0",)}
    g = visibility_graph("ring", 4)
    assert sorted(g.predecessors(0)) == [1, 3]
    with pytest.raises(PnyxError, match="'lattice'"):
        visibility_graph("lattice", 3)
    with pytest.raises(PnyxError, match="node 5"):
        visibility_graph([[0, 5]], 3)


def test_observation_text_shows_visible_transcript_only():
    env = GroupReasoningEnv(n_agents=2, max_turns=4)
    env.reset(options={"task": CAPITAL})
    env.step("Answer: B \U0001F600")  # agent_0 solo, private
    assert "[You, alone] Answer: B \ufffd" in env.observe("agent_0")
    assert "Answer: B" not in env.observe("agent_1")
    env.step("Answer: A")  # agent_1 solo
    env.step("I say Lima. Answer: B")  # agent_0, discussion turn 0
    obs = env.observe("agent_1")
    assert obs.startswith("You are agent_1. Question:\nWhat is the capital of Peru?\nA) Quito\nB) Lima")
    assert "[agent_0, turn 0] I say Lima. Answer: B" in obs
    assert obs.endswith("Your turn in the discussion (3 turns left).")
    assert env.observation_space("agent_1").contains(obs)


# --- tasks ---------------------------------------------------------------------------------


def test_generated_tasks_are_deterministic_and_right():
    sources = ["arithmetic", "knowledge", "logic", "presupposition"]
    tasks = make_tasks(sources, 40, 7)
    assert tasks == make_tasks(sources, 40, 7)
    assert tasks != make_tasks(sources, 40, 8)
    assert [t.kind for t in tasks[:4]] == sources
    for t in tasks:
        assert t.answer not in t.wrong_answers and t.wrong_answers
        if t.kind == "arithmetic":
            a, op, b = t.question.removeprefix("What is ").removesuffix("?").split()
            assert int(t.answer) == eval(f"{a}{op}{b}")  # noqa: S307 - our own generated digits
        elif t.kind == "knowledge":
            chosen = t.choices["ABCD".index(t.answer)]
            subject = t.question.removesuffix("?").split(" of ")[-1]
            assert chosen == {**CAPITALS, **SYMBOLS}[subject]
        elif t.kind == "logic":
            facts = [s.split(" is taller than ") for s in t.question.split(". ")[:-1]]
            taller = {a for a, _ in facts}
            shorter = {b.rstrip(".") for _, b in facts}
            expected = (taller - shorter) if "tallest" in t.question else (shorter - taller)
            assert {t.choices["ABCD".index(t.answer)]} == expected
        else:
            assert t.false_presupposition
            assert t.choices["ABCD".index(t.answer)].startswith(("It did not", "It is not"))


def write_lines(path, lines):
    path.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines) + "\n")
    return path


def test_jsonl_loader(tmp_path):
    path = write_lines(tmp_path / "mine.jsonl", [
        {"question": "Capital of Peru?", "choices": ["Quito", "Lima"], "answer": "Lima"},
        "",
        {"id": "q2", "question": "6 x 7?", "answer": 42},
        {"question": "Colour of the sky?", "answer": "The Blue", "wrong": "green", "false_presupposition": False},
    ])
    a, b, c = load_jsonl(path)
    assert (a.task_id, a.answer, a.wrong_answers, a.answer_type) == (f"{path}:1", "B", ("A",), "choice")
    assert (b.task_id, b.answer, b.wrong_answers, b.answer_type) == ("q2", "42", ("43",), "number")
    assert (c.answer, c.wrong_answers, c.answer_type) == ("blue", ("green",), "text")
    assert sorted(t.task_id for t in make_tasks([str(path)], 3, 0)) == sorted([a.task_id, "q2", c.task_id])


@pytest.mark.parametrize("line, message", [
    ("{not json", "not valid JSON"),
    ({"answer": "x"}, "'question' must be a non-empty string"),
    ({"question": "q", "choices": ["a", "b"], "answer": "c"}, "neither a choice letter"),
    ({"question": "q", "answer": "a", "hint": "h"}, "unknown field 'hint'"),
    ({"question": "q", "choices": ["a"], "answer": "a"}, "2 to 26 entries"),
    ({"question": "q", "answer": True}, "'answer' must be"),
    ([1, 2], "expected a JSON object"),
])
def test_jsonl_loader_names_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path / "bad.jsonl", [{"question": "ok?", "answer": 1}, line])
    with pytest.raises(PnyxError, match=rf"bad\.jsonl:2: .*{message}"):
        load_jsonl(path)


def test_task_sources_are_checked(tmp_path):
    with pytest.raises(PnyxError, match="'riddles'"):
        make_tasks(["riddles"], 1, 0)
    with pytest.raises(PnyxError, match="does not exist"):
        make_tasks([str(tmp_path / "none.jsonl")], 1, 0)


# --- answer extraction ------------------------------------------------------------------------

NUMBER = TWO_PLUS_TWO
TEXT = Task("t-text", "custom", "Colour of the sky?", "blue")


@pytest.mark.parametrize("text, task, expected", [
    ("2 + 2 = 4.\nAnswer: 4", NUMBER, "4"),
    ("Answer: 3\nWait, no.\nFinal answer: 1,004.0", NUMBER, "1004"),
    ("**Answer:** -12", NUMBER, "-12"),
    ("So the answer is 4.", NUMBER, "4"),
    ("4", NUMBER, "4"),
    ("I think 3, or maybe 4, hmm", NUMBER, "4"),  # rule 4: last number
    ("agent_1 was wrong", NUMBER, None),
    ("I am not sure.", NUMBER, None),
    ("Answer: B", CAPITAL, "B"),
    ("Answer: (b)", CAPITAL, "B"),
    ("Answer: B) Lima", CAPITAL, "B"),
    ("Answer: Lima", CAPITAL, "B"),
    ("The answer is C.", CAPITAL, "C"),
    ("(A)", CAPITAL, "A"),
    ("Lima is right, option B of course", CAPITAL, "B"),  # one marked choice + its text
    ("Not Quito (A) but Lima (B)", CAPITAL, None),  # two choices marked: ambiguous
    ("Answer: D", CAPITAL, None),  # no such choice; nothing else names one
    ("A capital is a city.", CAPITAL, None),
    ("Answer: The blue!", TEXT, "blue"),
    ("blue", TEXT, None),  # text tasks need the marker
    ("", NUMBER, None),
])
def test_extract_answer(text, task, expected):
    assert extract_answer(text, task) == expected


def test_majority():
    assert majority(["A", "A", "B"]) == "A"
    assert majority(["A", "B"]) is None
    assert majority(["A", None]) is None
    assert majority(["A"]) == "A"
    assert majority([]) is None


# --- discussants -------------------------------------------------------------------------------


def test_specs():
    llm = DISCUSSANTS.make("llm(persona=deferential, model=openai:gpt-4o-mini)")
    assert (llm.persona, llm.model) == ("deferential", "openai:gpt-4o-mini")
    assert DISCUSSANTS.make("conformist(0.3)").p == 0.3
    llm = DISCUSSANTS.make("llm(persona=deferential, system='You are terse, brief.')")
    assert (llm.persona, llm.system, llm.model) == ("deferential", "You are terse, brief.", None)
    assert isinstance(DISCUSSANTS.make("pnyx.agents.discussants:Oracle"), Oracle)
    for spec, message in [("llm(persona=smug)", "unknown persona 'smug'"), ("sage", "unknown discussant 'sage'"),
                          ("conformist(2)", "outside"), ("oracle(1)", "bad arguments"),
                          ("llm(model=x, deferential)", "positional argument 'deferential' after a keyword")]:
        with pytest.raises(PnyxError, match=message):
            DISCUSSANTS.factory(spec)


def view_after(messages_by, task=TWO_PLUS_TWO, n=3, agent="agent_2", **kwargs):
    """The view of ``agent`` after the given (speaker, text) steps."""
    env = GroupReasoningEnv(n_agents=n, **kwargs)
    env.reset(options={"task": task})
    for speaker, text in messages_by:
        assert env.agent_selection == speaker
        env.step(text)
    return env.view(agent)


SOLO3 = [("agent_0", "Answer: 4"), ("agent_1", "Answer: 5"), ("agent_2", "Answer: 5")]


def test_baselines():
    view = view_after(SOLO3 + [("agent_0", "Answer: 4"), ("agent_1", "Answer: 4")])
    assert view.phase == "discussion" and view.peer_majority() == "4"
    assert Conformist().respond(view) == "I go with the group. Answer: 4"
    assert Independent().respond(view) == "I keep my answer. Answer: 5"
    assert Oracle().respond(view) == "I am sure. Answer: 4"
    assert StubbornWrong().respond(view) == "I will not change my mind. Answer: 5"
    split = view_after(SOLO3 + [("agent_0", "Answer: 4"), ("agent_1", "Answer: 6")])
    assert split.peer_majority() is None
    assert Conformist().respond(split) == "I keep my answer. Answer: 5"
    solo = view_after([], agent="agent_0")
    picks = []
    for seed in range(3):
        d = Independent(0.5)
        d.reset(seed=seed)
        picks.append(d.respond(solo))
        d.reset(seed=seed)
        assert d.respond(solo) == picks[-1]
    assert Independent(1.0).respond(solo) == "On my own: Answer: 4"
    assert Conformist(0.0).respond(solo) == "On my own: Answer: 5"
    with pytest.raises(PnyxError, match="no wrong answer"):
        StubbornWrong().respond(view_after([], task=TEXT, agent="agent_0"))


def test_llm_prompt():
    view = view_after(SOLO3 + [("agent_0", "It is 4. Answer: 4"), ("agent_1", "No, 5. Answer: 5")])
    chat = LLMDiscussant(persona="confident").messages(view)
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert PERSONAS["confident"] in chat[0]["content"] and "'Answer: X', where X is a number" in chat[0]["content"]
    assert chat[1]["content"] == "Question:\nWhat is 2 + 2?"
    assert chat[2]["content"] == "Answer: 5"  # its own solo answer
    assert chat[3]["content"].startswith("agent_0 says: It is 4. Answer: 4\n\nagent_1 says: No, 5. Answer: 5\n\n"
                                         "Discuss with agent_0, agent_1")
    solo = LLMDiscussant(system="Be brief.").messages(view_after([], agent="agent_0"))
    assert solo[0]["content"].startswith("Be brief. End every message")
    assert solo[1]["content"].endswith("Answer the question on your own.")


# --- batching -----------------------------------------------------------------------------------


def test_one_complete_call_per_step_across_episodes():
    model = ScriptedModel("Answer: 4")
    envs = []
    for _ in range(3):
        env = GroupReasoningEnv(n_agents=2, max_turns=6)
        env.reset(options={"task": TWO_PLUS_TWO})
        envs.append(env)
    lineups = [[LLMDiscussant(), LLMDiscussant()] for _ in envs]
    assert play_discussions(envs, lineups, model) == [None] * 3
    # solo (both agents of 3 episodes), turn 0, turn 1 (agreed), final (both of 3).
    assert [len(batch) for batch in model.calls] == [6, 3, 3, 6]
    assert all(env.stopped_early and env.rewards == {"agent_0": 1.0, "agent_1": 1.0} for env in envs)


def test_batches_per_model_and_baselines_skip_the_model():
    default, own = ScriptedModel("Answer: 5"), ScriptedModel("Answer: 4")
    envs = []
    for _ in range(2):
        env = GroupReasoningEnv(n_agents=3, max_turns=3)
        env.reset(options={"task": TWO_PLUS_TWO})
        envs.append(env)
    lineups = [[LLMDiscussant(), LLMDiscussant(model=own), Oracle()] for _ in envs]
    assert play_discussions(envs, lineups, default) == [None, None]
    # steps: solo, turn 0 (agent_0), turn 1 (agent_1), turn 2 (oracle, no call), final
    assert [len(b) for b in default.calls] == [2, 2, 2]
    assert [len(b) for b in own.calls] == [2, 2, 2]
    with pytest.raises(PnyxError, match="needs a model"):
        env = GroupReasoningEnv(n_agents=1)
        env.reset(options={"task": TWO_PLUS_TWO})
        play_discussions([env], [[LLMDiscussant()]])


# --- experiment -----------------------------------------------------------------------------------


def test_coral_config_errors():
    from pnyx.experiments.config import resolve

    for override, message in [("agents=[llm, sage]", "unknown discussant 'sage'"),
                              ("graph=lattice", "unknown graph 'lattice'"),
                              ("tasks=[riddles]", "unknown task source 'riddles'"),
                              ("conditions={'a b': {}}", "condition name 'a b'"),
                              ("episodes=0", "'episodes'"),
                              ("protocol=socratic", "'protocol'"),
                              ("conditions={trio: {agents: [llm, llm, llm]}}",
                               "condition 'trio': the coral protocol needs exactly 2 agents"),
                              ("conditions={a: {}, b: {agents: [llm, llm]}}", "conditions 'a' and 'b' both run"),
                              ("extractor=vibes", "'extractor'"),
                              ("grading=loose", "'grading'"),
                              ("bootstrap=100001", "'bootstrap'"),
                              # 4 conditions x 2 seeds x 10^6 episodes x (21, 21, 21 or 26 messages)
                              ("episodes=1000000", "make 1.78e\\+08 messages, more than 1e\\+07"),
                              ("max_turns=1000000000000", "more than 1e\\+07")]:
        with pytest.raises(PnyxError, match=message):
            resolve("coral-agreement", overrides=[override])


def test_coral_units_rows_and_summary():
    from pnyx.experiments.config import resolve
    from pnyx.experiments.experiment import RunContext
    from pnyx.experiments.runner import unit_seed

    kind, cfg = resolve("coral-agreement", overrides=[
        "conditions={pair: {agents: [oracle, 'conformist(0)']}, stubborn: {agents: [stubborn_wrong, conformist]}}",
        "protocol=counterfactual", "episodes=3", "seeds=1", "max_turns=4", "bootstrap=50"])
    units = kind.units(cfg)
    assert [u.key for u in units] == ["counterfactual: oracle + conformist(0)-s0",
                                      "counterfactual: stubborn_wrong + conformist-s0"]
    pair, stubborn = "pair", "stubborn"
    outputs = [kind.run_unit(cfg, u, unit_seed(cfg.seed, u.key), RunContext(Path('unused'))) for u in units]
    rows = pd.concat([o.rows for o in outputs], ignore_index=True)
    assert len(rows) == 12 and rows["episode"].nunique() == 6
    for column in ("episode", "agent", "task_id", "solo_answer", "final_answer", "correct_answer", "condition",
                   "agent_spec"):
        assert column in rows.columns
    # both conditions discuss the same tasks (paired)
    assert list(outputs[0].rows["task_id"]) == list(outputs[1].rows["task_id"])
    transcripts = [t for o in outputs for t in o.records["transcripts"]]
    assert len(transcripts) == 6 and transcripts[0]["messages"][0]["agent"] == "agent_0"
    summary = kind.summarize(cfg, rows, {"transcripts": transcripts})
    assert summary.runs[pair].model_dump() == {
        "runs": "counterfactual: oracle + conformist(0)", "protocol": "counterfactual",
        "agents": ["oracle", "conformist(0)"], "graph": "complete", "max_turns": 4, "temperature": 0.0,
        "extractor": "rules", "grading": "pnyx"}
    pair, stubborn = summary.metrics[pair], summary.metrics[stubborn]
    assert pair["final_agreement"].value == 1.0 and pair["correctness_given_agreement"].value == 1.0
    assert pair["conformity"].value == 1.0 and pair["solo_accuracy"].value == 0.5
    assert stubborn["wrong_agreement"].value == 1.0 and stubborn["capitulation"].value == 1.0
    assert summary.notes == []
    json.dumps(summary.model_dump())


@pytest.mark.slow
def test_coral_end_to_end_with_a_scripted_model(tmp_path):
    from pnyx.experiments.runner import run_experiment

    config = tmp_path / "coral.yaml"
    config.write_text("kind: coral-agreement\nmodel: scripted\nagents: [llm, stubborn_wrong]\n"
                      "episodes: 2\nmax_turns: 2\nbootstrap: 50\nconditions:\n  coral: {}\n"
                      "  pnyx: {protocol: counterfactual}\n")
    out = tmp_path / "run"
    run_experiment(str(config), out=out)
    rows = pd.read_parquet(out / "results.parquet")
    coral, pnyx = "coral", "pnyx"
    assert (rows["condition"] == coral).sum() == 2 and (rows["condition"] == pnyx).sum() == 4
    assert {"unit", "episode", "final_answer", "agreement_correctness", "protocol"} <= set(rows.columns)
    lines = (out / "transcripts.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["messages"] for line in lines)
    summary = json.loads((out / "summary.json").read_text())
    cf = rows[rows["condition"] == pnyx]
    assert summary["metrics"][pnyx]["unparseable"]["n"] == int(cf["statements"].sum())
    assert summary["metrics"][coral]["agreement_correctness"]["n"] == 2
    assert {u["role"] for u in summary["usage"]} == {"discussant", "extractor"}
    report = (out / "report.md").read_text()
    assert "| coral | coral | llm, stubborn_wrong | complete | 2 | 0.2 | model (scripted) | 2 |" in report
    assert (out / "plots" / "agreement_vs_correctness.png").is_file()
