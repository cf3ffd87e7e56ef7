"""Add a policy of your own and play it in a tournament (docs/how-to/add-a-policy.md).

    python examples/own_policy.py [OUT]

A policy is any class with ``reset(seed=None)`` and ``act(observation) -> action``; this
one forgives every third defection. It is registered under a name in this script, played
against the classic strategies in the quick tournament, and its row of the ranking printed.
"""

import sys
import tempfile

import pnyx
from pnyx.agents import POLICIES


class Generous:
    """Tit for tat that forgives every third defection of the opponent."""

    def reset(self, seed=None):
        self.forgiven = 0

    def act(self, observation):
        if observation in (1, 3):  # the opponent defected last round: CD or DD from this player's view
            self.forgiven += 1
            return 0 if self.forgiven % 3 == 0 else 1
        return 0


def main(out: str) -> None:
    POLICIES.register("generous", Generous)
    run = pnyx.run("tournament", out=out, quick=True, workers=1, progress=False,
                   overrides={"players": ["generous", "tft", "alld", "allc", "grim"]})
    ranking = run.summary["ranking"]
    print(f"ranking ({run.summary['ranking_convention']}):")
    for place, player in enumerate(ranking, 1):
        print(f"{place}. {player}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="pnyx-own-policy-"))
