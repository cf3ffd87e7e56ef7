"""``pnyx list`` shows what ships."""

from pnyx.experiments.cli import main


def test_list_shows_experiments_envs_and_policies(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ["quickstart", "network-cooperation", "ipd", "public_goods", "zd_extort", "memory_one"]:
        assert name in out
