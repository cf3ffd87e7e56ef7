"""``llm-dilemmas`` end to end with a scripted model that plays a planted best response; its
game is checked against the registered two-player games."""

import json
import re

import numpy as np
import pytest

from pnyx.agents.llm import ScriptedModel
from pnyx.errors import PnyxError
from pnyx.experiments.config import validate
from pnyx.experiments.runner import run_experiment


def best_responder(chat):
    """Cooperates while the other player has never defected, defects against a partner who
    has always cooperated from round 3 on (exploitation), and the competitive persona always defects."""
    system, text = chat[0]["content"], chat[-1]["content"]
    if "score more points" in system:
        return "Move: defect"
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    other = [row.split("|")[3].strip() for row in rows]
    if "defect" in other:
        return "Move: defect"
    return "Move: defect" if len(other) >= 2 else "Move: cooperate"


def test_llm_dilemmas_quick_with_a_planted_strategy(tmp_path):
    model = ScriptedModel(best_responder)
    run_experiment("llm-dilemmas", out=tmp_path / "o", quick=True, workers=1, progress=False,
                   models=lambda spec: model)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert set(summary["sections"]) == {"round_robin", "best_response", "llm_vs_llm"}
    br = {(e["persona"], e["partner"]): e for e in summary["sections"]["best_response"]}
    assert set(br) == {(p, q) for p in ("neutral", "competitive")
                       for q in ("tft", "allc", "alld", "random_memory_one(0)")}
    # neutral vs alld: C in round 1 (no history), then D: 1/3; vs allc: C, C, D
    assert br["neutral", "alld"]["cooperation_by_round"] == [1.0, 0.0, 0.0]
    assert br["neutral", "allc"]["cooperation_by_round"] == [1.0, 1.0, 0.0]
    assert br["neutral", "alld"]["cooperation"]["value"] == pytest.approx(1 / 3)
    assert br["competitive", "tft"]["cooperation"]["value"] == 0.0
    # tft vs the neutral player: C, C, then D (exploit)
    assert br["neutral", "tft"]["cooperation_by_round"] == [1.0, 1.0, 0.0]
    assert br["neutral", "tft"]["payoff"] == pytest.approx((3 + 3 + 5) / 3)
    (ll,) = summary["sections"]["llm_vs_llm"]
    assert ll["partner"] == "llm:competitive" and ll["cooperation_by_round"] == [1.0, 0.0, 0.0]
    assert all(m["fallback"] == 0 and m["truncated"] == 0 for m in summary["llm"].values())
    assert summary["model"] == "scripted" and summary["notes"] == []  # the embedded model did not run
    assert summary["usage"][0]["calls"] > 0
    assert (tmp_path / "o" / "plots" / "best_response.png").stat().st_size > 0
    from pnyx import load_run

    neutral = load_run(tmp_path / "o").figures()["best_response"].axes[0]
    labels = [line.get_label() for line in neutral.lines]
    assert neutral.get_title() == "persona: neutral" and labels == ["tft", "allc", "alld", "random_memory_one(0)"]
    np.testing.assert_allclose(neutral.lines[2].get_ydata(), [1, 0, 0])
    # vs alld over 2 games: Wilson intervals of 2/2 and 0/2, [2 / (2 + z^2), 1] and [0, z^2 / (2 + z^2)]
    (path,) = neutral.collections[2].get_paths()
    z2 = 1.959963984540054**2
    edges = {x: (min(y for u, y in path.vertices if u == x), max(y for u, y in path.vertices if u == x))
             for x in (1, 2, 3)}
    cut = z2 / (2 + z2)
    np.testing.assert_allclose([edges[1], edges[2], edges[3]], [(2 / (2 + z2), 1), (0, cut), (0, cut)])
    assert "| neutral | `alld` | 0.33" in (tmp_path / "o" / "report.md").read_text()


@pytest.mark.parametrize("game, message", [
    ("public_goods", "invalid config field 'game': 'public_goods' is not a registered two-player matrix game"),
    ("nope", "invalid config field 'game': 'nope' is not a registered two-player matrix game"),
])
def test_game_must_be_a_registered_two_player_game(game, message):
    with pytest.raises(PnyxError, match=re.escape(message)):
        validate({"kind": "llm-dilemmas", "game": game})
    assert validate({"kind": "llm-dilemmas", "game": "stag_hunt"})[1].game == "stag_hunt"
    assert validate({"kind": "llm-dilemmas", "game": game}, stored=True)[1].game == game  # a stored run imports nothing
