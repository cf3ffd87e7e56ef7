"""``pnyx list`` shows what ships."""

from pnyx.agents.judges import JUDGES
from pnyx.experiments.cli import main

EXPERIMENTS = {"coral-agreement", "network-cooperation", "peer-goal-guarding", "quickstart", "weis-ipd"}
ENVIRONMENTS = {"chicken", "goal_guarding", "group_reasoning", "ipd", "public_goods", "stag_hunt"}
POLICIES = {"allc", "alld", "alternator", "grim", "memory_one", "random", "random_memory_one", "stft", "tf2t", "tft",
            "wsls", "zd_extort"}


def sections(listing: str) -> dict[str, list[str]]:
    """The names of each section of ``pnyx list``: a section is either ``heading: a, b, c``
    on one line, or ``heading:`` followed by indented lines that each start with a name."""
    out, heading = {}, None
    for line in listing.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            assert heading is not None, f"indented line before any heading: {line!r}"
            out[heading].append(line.split()[0])
        else:
            heading, colon, rest = line.partition(":")
            assert colon, f"not a section heading: {line!r}"
            heading = heading.strip()
            out[heading] = [name.strip() for name in rest.split(",") if name.strip()]
    return out


def test_sections_parser_reads_whole_names():
    listing = "experiments:\n  weis-ipd   A paper\nenvironments: stag_hunt, ipd_v2\n"
    assert sections(listing) == {"experiments": ["weis-ipd"], "environments": ["stag_hunt", "ipd_v2"]}
    assert "ipd" not in sections(listing)["environments"]


def test_list_shows_experiments_envs_policies_and_judges(capsys):
    assert main(["list"]) == 0
    listed = sections(capsys.readouterr().out)
    for heading, shipped in [("experiments", EXPERIMENTS), ("environments", ENVIRONMENTS), ("policies", POLICIES),
                             ("judges", set(JUDGES.names()))]:
        names = listed[heading]
        assert len(names) == len(set(names)), f"{heading}: duplicate names {names}"
        assert shipped <= set(names), f"{heading}: missing {sorted(shipped - set(names))}"
