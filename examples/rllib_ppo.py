"""Train RLlib's PPO on pnyx's iterated prisoner's dilemma (docs/how-to/rl-libraries.md).

    python examples/rllib_ppo.py [OUT]

Needs the ``rl`` extra (``pip install 'pnyx[rl]'``). One PPO policy per seat on
``ipd`` with one-hot observations, which RLlib's default encoders take as they are, so no
connector is added. It trains a few iterations in this process, prints each one's mean
episode return and saves a checkpoint to OUT.
"""

import sys
import tempfile

import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
from ray.tune.registry import register_env

import pnyx.envs

ROUNDS = 20
ITERATIONS = 3


def main(out: str) -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    register_env("pnyx_ipd", lambda config: ParallelPettingZooEnv(
        pnyx.envs.make("ipd", rounds=config["rounds"], observations="one_hot")))
    config = (
        PPOConfig()
        .environment("pnyx_ipd", env_config={"rounds": ROUNDS})
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=2)
        .multi_agent(policies={"player_0", "player_1"},
                     policy_mapping_fn=lambda agent_id, episode, **kwargs: agent_id)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    for iteration in range(1, ITERATIONS + 1):
        result = algo.train()
        print(f"iteration {iteration}: mean episode return {result['env_runners']['episode_return_mean']:.1f} "
              f"over {ROUNDS} rounds, both seats")
    print(f"PPO checkpoint saved to {algo.save(out).checkpoint.path}")
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="pnyx-rllib-"))
