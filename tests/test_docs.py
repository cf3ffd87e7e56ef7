"""The documentation: every measured quantity of every kind's summary is explained, and
the site builds with ``mkdocs build --strict`` (generated pages included)."""

import importlib.util
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from pnyx.experiments.catalog import KINDS, get_kind

ROOT = Path(__file__).resolve().parent.parent
QUANTITIES = ROOT / "docs" / "explanations" / "quantities.md"


def models_in(annotation) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds, through unions, lists and mappings."""
    found = [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []
    return found + [m for arg in typing.get_args(annotation) for m in models_in(arg)]


def field_names(model: type[BaseModel], seen: set | None = None) -> set[str]:
    """Every field name of ``model`` and of the models its fields hold."""
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    names = set(model.model_fields)
    for info in model.model_fields.values():
        for held in models_in(info.annotation):
            names |= field_names(held, seen)
    return names


@pytest.mark.parametrize("kind", KINDS.names())
def test_every_summary_field_is_explained(kind):
    """Each field of the kind's summary is named in code on the quantities page; a ``NAME_std``
    counts when ``NAME`` and the ``_std`` convention are."""
    named = set(re.findall(r"`([A-Za-z_]\w*)`", QUANTITIES.read_text()))
    missing = [name for name in sorted(field_names(get_kind(kind).Summary)) if name not in named
               and not (name.endswith("_std") and name.removesuffix("_std") in named and "_std" in named)]
    assert missing == []


def test_the_dynamic_metric_names_are_explained():
    from pnyx.experiments.experiment import RUN_ENTRIES
    from pnyx.population import coral_metrics, goal_guarding_metrics, learner_runs

    named = set(re.findall(r"`([A-Za-z_]\w*)`", QUANTITIES.read_text()))
    metrics = {*coral_metrics.CORAL_METRICS, *coral_metrics.CORAL_BOOKKEEPING, *coral_metrics.METRICS,
               *goal_guarding_metrics.RATES, *goal_guarding_metrics.CONTRASTS, *learner_runs.METRICS, *RUN_ENTRIES}
    assert sorted(metrics - named) == []


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("the docs extra is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("run", "tournament", "judge-eval", "list", "show", "report"):
        assert f"pnyx {command}</code>" in cli
    config = (site / "reference" / "config" / "index.html").read_text()
    summary = (site / "reference" / "summary" / "index.html").read_text()
    for kind in KINDS.names():
        assert f'id="{kind}"' in config and f'id="{kind}"' in summary
    registries = (site / "reference" / "registries" / "index.html").read_text()
    assert "<code>tft</code>" in registries and "<code>keyword_af</code>" in registries
    assert "PnyxError" in (site / "reference" / "api" / "core" / "index.html").read_text()
    assert (site / "assets" / "tournament_payoff_matrix.png").is_file()
