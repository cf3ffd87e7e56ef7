"""A researcher's first hour: one labelled ranking convention, ``pnyx list`` and ``pnyx show``,
the shipped tournament preset, and the self-contained HTML report."""

import base64
import json
import subprocess
import sys

import pytest

from pnyx.experiments.cli import main
from pnyx.experiments.runner import run_experiment


def _tournament(tmp_path, players, turns=20, repetitions=4):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"kind: tournament\nplayers: {players}\nturns: {turns}\nrepetitions: {repetitions}\nseed: 1\n")
    out = tmp_path / "out"
    summary = run_experiment(str(cfg), out=out, workers=1, progress=False)
    return summary, out


def test_ranking_follows_axelrods_convention_and_says_so(tmp_path):
    # Over 20 turns: tft scores 0.95 against alld and 3 against wsls; alld 1.2 and 3; wsls 3 and 0.5.
    # Without self-play (Axelrod): alld 2.1 > tft 1.975 > wsls 1.75; with self-play (3, 1, 3) the
    # means order them tft > wsls > alld.
    wsls = "memory_one(1,0,0,1,1)"
    summary, out = _tournament(tmp_path, ["tft", "alld", wsls])
    assert summary["ranking"] == ["alld", "tft", wsls]
    assert summary["median_payoff"] == pytest.approx({"tft": 1.975, "alld": 2.1, wsls: 1.75})
    assert "self-play excluded" in summary["ranking_convention"]
    assert summary["mean_payoff"] == pytest.approx({"tft": 6.95 / 3, "alld": 5.2 / 3, wsls: 6.5 / 3})
    report = (out / "report.md").read_text()
    assert "self-play excluded" in report and "mean payoff incl. self-play" in report
    rows = [line.split("|")[2].strip(" `") for line in report.splitlines() if line.startswith("| 1 |")
            or line.startswith("| 2 |") or line.startswith("| 3 |")]
    assert rows == ["alld", "tft", wsls]
    from pnyx import load_run

    figures = load_run(out).figures()
    labels = [t.get_text() for t in figures["payoff_boxplot"].axes[0].get_xticklabels()]
    assert labels == summary["ranking"]
    for name, figure in figures.items():
        title = figure.get_suptitle() or figure.axes[0].get_title()
        assert ("Axelrod" in title) or ("ranking" in title), (name, title)


def _pnyx(*args):
    code = ("import sys; from pnyx.experiments.cli import main; code = main(sys.argv[1:]); "
            "print('HEAVY', sorted(m for m in ('axelrod', 'torch', 'transformers', 'ray') if m in sys.modules)); "
            "sys.exit(code)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=900)


def test_list_filters_one_section_without_importing_heavy_packages():
    done = _pnyx("list", "policies", "--filter", "titfortat")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "policies:" and lines[-1] == "HEAVY []"
    names = [line.split()[0] for line in lines[1:-1]]
    assert "axelrod:TitForTat" in names and "tft" not in names and "axelrod:Grudger" not in names
    whole = _pnyx("list")
    assert whole.returncode == 0 and whole.stdout.splitlines()[-1] == "HEAVY []", whole.stderr
    assert {"experiments:", "policies:", "language models:"} <= set(whole.stdout.splitlines())


def test_list_names_sections_by_alias_and_refuses_what_is_not_there(capsys):
    assert main(["list", "games"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("environments:\n") and "  ipd " in out and "policies:" not in out
    assert main(["list", "presets", "--filter", "ROUND ROBIN"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["tournament"]
    assert main(["list", "policies", "--filter", "no such thing"]) == 2
    assert "nothing listed matches 'no such thing'" in capsys.readouterr().err
    assert main(["list", "strategies"]) == 2
    assert "invalid choice: 'strategies'" in capsys.readouterr().err


def test_the_shipped_axelrod_index_matches_the_installed_package():
    pytest.importorskip("axelrod")
    from pnyx.agents.axelrod_index import STRATEGIES
    from pnyx.agents.axelrod_strategies import strategy_index

    assert STRATEGIES == strategy_index(), "regenerate it: python -m pnyx.agents.axelrod_strategies"


def test_show_prints_the_preset_yaml_with_each_fields_meaning(capsys, tmp_path):
    import yaml

    from pnyx.experiments.config import resolve

    assert main(["show", "tournament"]) == 0
    text = capsys.readouterr().out
    assert yaml.safe_load(text)["kind"] == "tournament"
    lines = text.splitlines()
    above = {line.split(":")[0]: lines[i - 1] for i, line in enumerate(lines) if line and not line[0].isspace()
             and not line.startswith("#") and i}
    assert above["seed"].startswith("# the run's seed")
    assert "quick" in above["quick"] and "--quick" in above["quick"]
    assert above["game"] == "# A registered two-player matrix game. (default 'ipd')"
    copy = tmp_path / "mine.yaml"
    copy.write_text(text)
    assert resolve(str(copy), quick=True)[1] == resolve("tournament", quick=True)[1]
    suite = main(["show", "quickstart"]) == 0 and capsys.readouterr().out
    assert "    # population size N" in suite
    assert main(["show", "nope"]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_the_tournament_preset_quick_run_writes_a_self_contained_html_report(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "tournament", "--quick", "--workers", "1", "--no-progress", "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "plots/" not in page
    images = [p.stem for p in sorted((out / "plots").glob("*.png"))]
    assert images and images == sorted(["payoff_matrix", "payoff_differences", "cooperation_matrix", "payoff_boxplot",
                                        "payoff_difference_distributions", "wins", "evolution"])
    for name in images:
        data = base64.b64encode((out / "plots" / f"{name}.png").read_bytes()).decode()
        assert f'alt="{name}" src="data:image/png;base64,{data}"' in page
    assert page.count("<table>") == 1 and "<th>median payoff (Axelrod)</th>" in page
    assert "<td><code>tft</code></td>" in page
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ranking_convention"] in page


def test_the_small_converter_renders_headings_tables_lists_images_and_code():
    from pnyx.experiments.html_report import _convert

    page = _convert("# T\n\nsome `x` text\n\n| a | b |\n|---|---|\n| 1 | `y` |\n\n- one\n- two\n\n"
                    "![p](plots/p.png)\n\n```yaml\nk: <v>\n```\n| stray\n")
    assert "<h1>T</h1>" in page and "<p>some <code>x</code> text</p>" in page
    assert "<tr><th>a</th><th>b</th></tr>" in page and "<tr><td>1</td><td><code>y</code></td></tr>" in page
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in page and '<img alt="p" src="plots/p.png">' in page
    assert "<pre><code>k: &lt;v&gt;</code></pre>" in page and "<p>| stray</p>" in page


def test_a_suites_html_report_embeds_its_parts_figures(tmp_path):
    from pnyx.experiments.html_report import write_html_report

    (tmp_path / "ipd" / "plots").mkdir(parents=True)
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    (tmp_path / "ipd" / "plots" / "payoff_matrix.png").write_bytes(png)
    (tmp_path / "report.md").write_text("# suite\n\n### ipd\n\n![ipd](ipd/plots/payoff_matrix.png)\n")
    write_html_report(tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert 'src="data:image/png;base64,' in page and 'src="ipd/' not in page
