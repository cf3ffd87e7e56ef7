"""pnyx: multi-agent simulation of cooperation and sycophancy.

The subpackages are ``pnyx.envs`` (PettingZoo environments), ``pnyx.agents``
(policies and language models), ``pnyx.population`` (population dynamics and
metrics) and ``pnyx.experiments`` (configs, the runner, the ``pnyx`` CLI).
"""

__version__ = "0.1.0"
