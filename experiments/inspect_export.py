"""``pnyx export inspect``: a run's text episodes as Inspect eval logs, for ``inspect view``.

Each text study of a run folder (a suite's parts included) becomes one log
(``inspect_ai.log.EvalLog``, written by ``write_eval_log`` as ``NAME.eval``: the kind, or
the part's name in a suite) with one sample per episode:

* ``peer-goal-guarding``: one sample per results row. The messages are the focal model's
  system prompt and user message, rebuilt from the stored config and its scenario (they are
  not stored per sample), and its reply; the scores are pnyx's judgements (``compliance``
  with the verdict as value and the reply's output, less its scratchpad, as answer,
  ``partial_compliance``, ``af``) with the judge and what it saw and said as explanation,
  and ``af_keyword``.
* ``peer-preservation``: one sample per results row; the system prompt, the task, each
  turn as an assistant message with its tool calls, each call's result as a tool message
  (whether the model called tools natively or in text tags); the scores are the
  preservation flags, each outcome check and each judge question, from the results row.
* ``coral-agreement``: one sample per discussion episode; the question and each message,
  the speaking agent as the message's model; the scores are the episode's row (Coral's
  protocol) or each agent's row (the counterfactual protocol) from the results table.

Every sample's metadata holds its results row (condition, context and the rest), so the
viewer filters by them; its output is its last assistant message. The log's stats hold ``summary.json``'s token usage per model and
per role (input read from and written to a provider's prompt cache apart, the cost
estimate where prices were given). Files are read through :mod:`pnyx.files` and written by
:func:`pnyx.paths.run_path` into the output folder (by default ``RUN_FOLDER/inspect``).
``pnyx run --export inspect`` writes the same logs as the run ends
(:func:`check_exportable` refuses a run with nothing to export before it starts).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from pnyx.errors import PnyxError
from pnyx.files import json_lines, read_bytes, read_json, read_text, read_yaml
from pnyx.paths import exists, run_path
from pnyx.redaction import redact_value

INSTALL = "pip install 'pnyx[inspect]'"
#: Largest ``results.parquet`` or ``transcripts.jsonl`` read, in bytes.
MAX_BYTES = 1024 * 2**20
#: The kinds whose episodes are exported.
KINDS = ("peer-goal-guarding", "peer-preservation", "coral-agreement")
#: Coral-protocol results columns exported as scores.
CORAL_SCORES = ("agreement", "agreement_correctness", "final_success_rate", "valid_answer_rate", "persuade_rate",
                "assert_rate", "persuasion_quality", "n_turns_to_success")


def _plain(value: Any) -> Any:
    """A results cell as a JSON value: NaN and missing become ``None``, numpy scalars Python ones."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _row_dict(row: pd.Series) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in row.items() if k != "unit"}


def _read_run(folder: Path) -> tuple[dict, pd.DataFrame, list[dict], dict]:
    """The stored config, results table, transcripts and summary of a finished run folder."""
    config = read_yaml(folder / "config.yaml", f"config {str(folder / 'config.yaml')!r}")
    where = str(folder / "results.parquet")
    try:
        results = pd.read_parquet(io.BytesIO(read_bytes(folder / "results.parquet", f"results {where!r}", MAX_BYTES)))
    except (OSError, ValueError) as e:
        raise PnyxError(f"results {where!r} is not a readable Parquet table ({e})") from None
    path = folder / "transcripts.jsonl"
    text = read_text(path, f"transcripts {str(path)!r}", MAX_BYTES)
    transcripts = [value for _, value in json_lines(text.splitlines(), str(path))]
    summary_path = folder / "summary.json"
    summary = {}
    if exists(summary_path, f"summary {str(summary_path)!r}", regular=True):
        summary = read_json(summary_path, f"summary {str(summary_path)!r}")
    return config, results, transcripts, summary


def _score(value: Any, explanation: str | None = None, metadata: dict | None = None, answer: str | None = None):
    from inspect_ai.scorer import Score

    return Score(value=value, explanation=explanation, metadata=metadata, answer=answer)


def _judgement_score(value: Any, judgement: dict, answer: str | None = None):
    """A pnyx judgement (transcript form) as a score: the judge and its raw record as explanation."""
    raw = judgement.get("raw", {})
    return _score(value, f"{judgement.get('judge')}: {json.dumps(raw, sort_keys=True)}",
                  {"judge": judgement.get("judge"), "score": judgement.get("score"),
                   "decision": judgement.get("decision"), "raw": raw}, answer)


def _goal_guarding_samples(config: dict, results: pd.DataFrame, transcripts: list[dict]) -> list:
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    from pnyx.envs.goal_guarding_v0 import focal_user_message, system_prompt
    from pnyx.experiments.config import validate
    from pnyx.experiments.peer_goal_guarding import build_scenario, peer_of

    _, cfg = validate(config, stored=True)
    scenario = build_scenario(cfg)
    requests = {r.id: r for r in scenario.requests}
    names = [peer_of(p)[0].name for p in cfg.peers]
    by_key = {(t["condition"], t["context"], t["request_id"], t["sample"]): t for t in transcripts}
    samples = []
    for _, row in results.iterrows():
        key = (row["condition"], row["context"], row["request_id"], int(row["sample"]))
        t = by_key.get(key)
        if t is None:
            raise PnyxError(f"no transcript for results row {key}")
        if key[2] not in requests:
            raise PnyxError(f"request {key[2]!r} is not in the run's scenario; its prompt cannot be rebuilt")
        peer_lines = [(m["peer"], m["content"]) for m in t["peer_messages"]]
        system = system_prompt(scenario, key[0], [] if key[0] == "alone" else names)
        user = focal_user_message(scenario, requests[key[2]], key[1], peer_lines)
        judged = t["judgements"]
        scores = {}
        answer = t["output"] or t["response"]  # what the user would see: the reply less its scratchpad
        if "compliance" in judged:
            scores["compliance"] = _judgement_score(t["verdict"], judged["compliance"], answer)
        else:
            scores["compliance"] = _score(t["verdict"], "not judged: the reply was cut at the token limit", answer=answer)
        for role in ("partial_compliance", "af"):
            if role in judged:
                scores[role] = _judgement_score(judged[role]["decision"], judged[role])
        scores["af_keyword"] = _score(bool(row["af_keyword"]),
                                      f"keyword baseline: terms {', '.join(t['af_keyword_terms']) or 'none'}")
        samples.append(EvalSample(
            id="/".join(map(str, key)), epoch=1, input=[ChatMessageSystem(content=system), ChatMessageUser(content=user)],
            target="", messages=[ChatMessageSystem(content=system), ChatMessageUser(content=user),
                                 ChatMessageAssistant(content=t["response"])],
            scores=scores,
            metadata={**_row_dict(row), "finish_reason": t["finish_reason"], "scratchpad": t["scratchpad"],
                      "output": t["output"]}))
    return samples


def _preservation_samples(results: pd.DataFrame, transcripts: list[dict]) -> list:
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser
    from inspect_ai.tool import ToolCall

    keys = ("task", "subject", "relationship", "channel", "monitoring", "peers", "stakes", "peer_model", "sample")
    by_key = {tuple(t.get(k) for k in keys): t for t in transcripts}
    samples = []
    for _, row in results.iterrows():
        meta = _row_dict(row)
        key = tuple(meta.get(k) for k in keys)
        t = by_key.get(key)
        if t is None:
            raise PnyxError(f"no transcript for results row {key}")
        messages = [ChatMessageSystem(content=t["system"]), ChatMessageUser(content=t["task_message"])]
        for n, turn in enumerate(t["turns"]):
            ids = [f"turn{n}-call{i}" for i in range(len(turn["calls"]))]
            calls = [ToolCall(id=i, function=c["name"] or "unreadable", arguments=_arguments(c["arguments"]))
                     for i, c in zip(ids, turn["calls"])]
            messages.append(ChatMessageAssistant(content=turn["text"], tool_calls=calls or None))
            messages += [ChatMessageTool(content=c["result"], tool_call_id=i, function=c["name"] or "unreadable")
                         for i, c in zip(ids, turn["calls"])]
        fired = t["outcomes"]
        scores = {kind: _score(bool(meta[kind]), f"outcomes fired: {', '.join(k for k, v in fired.items() if v) or 'none'}")
                  for kind in ("self_preservation", "peer_preservation")}
        scores |= {name: _score(bool(meta[name]), f"outcome check {name.split(':', 1)[1]}: sandbox changes "
                                + json.dumps(t["sandbox_diff"], sort_keys=True))
                   for name in meta if name.startswith("outcome:") and not name.startswith("outcome:judge:")}
        scores |= {f"judge:{name}": _score("unreadable" if v is None else bool(v), "judge question about the replies")
                   for name, v in t["judgements"].items()}
        samples.append(EvalSample(
            id="/".join(str(k) for k in key), epoch=1, input=messages[:2], target="", messages=messages, scores=scores,
            metadata={**meta, "scores_submitted": t["scores_submitted"], "messages_sent": t["messages_sent"]}))
    return samples


def _arguments(text: str) -> dict:
    """A tool call's argument text as a mapping (unreadable text kept under ``text``)."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {"text": text}
    return value if isinstance(value, dict) else {"text": text}


def _discussion_samples(results: pd.DataFrame, transcripts: list[dict]) -> list:
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ChatMessageAssistant, ChatMessageUser

    samples = []
    for t in transcripts:
        rows = results[results["episode"] == t["episode"]]
        if rows.empty:
            raise PnyxError(f"no results row for episode {t['episode']!r}")
        messages = [ChatMessageUser(content=t["question"])]
        for m in t["messages"]:
            meta = {k: m[k] for k in ("agent", "phase", "turn", "answer", "extracted", "truncated")}
            messages.append(ChatMessageAssistant(content=m["content"], model=m["agent"], metadata=meta))
        scores = {}
        for _, row in rows.iterrows():
            values = _row_dict(row)
            if t["protocol"] == "coral":
                scores |= {name: _score(values[name]) for name in CORAL_SCORES if values.get(name) is not None}
            else:
                agent = values["agent"]
                scores[agent] = _score(
                    {k: v for k, v in values.items() if isinstance(v, (int, float, bool)) and k not in
                     ("replicate", "turns", "stopped_early")},
                    f"solo answer {values.get('solo_answer')}, final answer {values.get('final_answer')}, "
                    f"correct {t['correct_answer']}")
        first = _row_dict(rows.iloc[0])
        metadata = {k: first[k] for k in ("condition", "protocol", "replicate", "agents", "graph", "extractor",
                                          "task_id", "task_kind", "correct_answer", "turns", "stopped_early")
                    if k in first}
        samples.append(EvalSample(id=t["episode"], epoch=1, input=t["question"], target=t["correct_answer"],
                                  messages=messages, scores=scores, metadata=metadata))
    return samples


def _with_output(sample, model: str):
    """``sample`` with its last assistant message as its output (the viewer's answer column)."""
    from inspect_ai.model import ChatMessageAssistant, ModelOutput

    last = next((m for m in reversed(sample.messages) if isinstance(m, ChatMessageAssistant)), None)
    if last is None:
        return sample
    return sample.model_copy(update={"output": ModelOutput.from_content(model, last.text)})


def _model_usage(row: dict):
    """A ``summary.json`` usage row as inspect's ``ModelUsage`` (whose input tokens exclude the cache's)."""
    from inspect_ai.model import ModelUsage

    cached, written = row.get("cached_prompt_tokens"), row.get("cache_write_tokens")
    prompt, completion = int(row.get("prompt_tokens") or 0), int(row.get("completion_tokens") or 0)
    return ModelUsage(input_tokens=prompt - (cached or 0) - (written or 0), output_tokens=completion,
                      total_tokens=prompt + completion, input_tokens_cache_read=cached,
                      input_tokens_cache_write=written, total_cost=row.get("cost_usd"))


def _stats(summary: dict):
    """The log's stats: when the run started and finished, its usage per model and per role
    (a role whose backend reported no token counts is left out)."""
    from inspect_ai.log import EvalStats

    per_model: dict[str, Any] = {}
    per_role: dict[str, Any] = {}
    for row in summary.get("usage") or []:
        if row.get("requests_without_usage") and row["requests_without_usage"] >= row.get("requests", 0):
            continue  # the backend reported no token counts at all
        usage = _model_usage(row)
        for table, key in ((per_model, str(row.get("model"))), (per_role, str(row.get("role")))):
            table[key] = usage if key not in table else table[key] + usage
    provenance = summary.get("provenance") or {}
    return EvalStats(started_at=str(provenance.get("started") or ""), completed_at=str(provenance.get("finished") or ""),
                     model_usage=per_model, role_usage=per_role)


def eval_log(folder: Path, name: str):
    """The Inspect log of the text study in ``folder``."""
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalResults, EvalSpec

    config, results, transcripts, summary = _read_run(folder)
    kind = config.get("kind")
    if kind == "peer-goal-guarding":
        samples = _goal_guarding_samples(config, results, transcripts)
    elif kind == "peer-preservation":
        samples = _preservation_samples(results, transcripts)
    elif kind == "coral-agreement":
        samples = _discussion_samples(results, transcripts)
    else:
        raise PnyxError(f"{str(folder)!r} is a {kind!r} run; text studies are {', '.join(KINDS)}")
    model = config.get("model", "unknown")
    model = model.get("spec", "unknown") if isinstance(model, dict) else str(model)
    usage = summary.get("usage") or []
    served = sorted({u["model"] for u in usage if u.get("role") in ("focal", "discussant")})
    samples = [_with_output(sample, ", ".join(served) or model) for sample in samples]
    created = (summary.get("provenance") or {}).get("started") or pd.Timestamp.now(tz="UTC").isoformat()
    spec = EvalSpec(created=str(created), task=name, dataset=EvalDataset(name=kind, samples=len(samples)),
                    model=", ".join(served) or model, config=EvalConfig(), task_args={},
                    metadata=redact_value({"pnyx_kind": kind, "pnyx_config": config, "usage": usage}))
    return EvalLog(eval=spec, status="success", samples=samples, stats=_stats(summary),
                   results=EvalResults(total_samples=len(samples), completed_samples=len(samples)))


def check_exportable(kind: str, cfg: Any) -> None:
    """A one-line :class:`PnyxError` before a run of ``kind`` (its validated ``cfg``) if
    ``--export inspect`` could write nothing: inspect_ai missing, or no text study in it."""
    try:
        import inspect_ai.log  # noqa: F401
    except ImportError:
        raise PnyxError(f"--export inspect needs inspect_ai: {INSTALL}") from None
    parts = getattr(cfg, "parts", None) if kind == "suite" else None
    kinds = [part.get("kind") for part in parts.values() if isinstance(part, dict)] if parts else [kind]
    if not any(k in KINDS for k in kinds):
        raise PnyxError(f"--export inspect: a {kind} run holds no text study ({', '.join(KINDS)})")


def _text_studies(folder: Path) -> list[tuple[Path, str]]:
    """(folder, log name) of each text study in the run folder, a suite's parts included."""
    path = folder / "config.yaml"
    if not exists(path, f"config {str(path)!r}", regular=True):
        raise PnyxError(f"{str(folder)!r} is not a pnyx run folder (no config.yaml)")
    config = read_yaml(path, f"config {str(path)!r}")
    if config.get("kind") == "suite":
        parts = [(folder / name, name) for name, part in (config.get("parts") or {}).items()
                 if isinstance(part, dict) and part.get("kind") in KINDS and exists(folder / name / "config.yaml",
                                                                                    f"part {name!r}", regular=True)]
        if not parts:
            raise PnyxError(f"suite {str(folder)!r} has no finished text study ({', '.join(KINDS)})")
        return parts
    return [(folder, str(config.get("kind")))]


def export_inspect(folder: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write the Inspect logs of the run in ``folder`` into ``out`` (default ``folder/inspect``); the paths written."""
    try:
        from inspect_ai.log import write_eval_log
    except ImportError:
        raise PnyxError(f"pnyx export inspect needs inspect_ai: {INSTALL}") from None
    folder = Path(folder)
    studies = _text_studies(folder)
    root = Path(out) if out is not None else run_path(folder, "inspect", folder=True)
    logs = [(name, eval_log(path, name)) for path, name in studies]
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, log in logs:
        path = run_path(root, f"{name}.eval")
        write_eval_log(log, str(path))
        written.append(path)
    return written
