"""Sequence-model policies: state carried across steps and reset at episode boundaries,
save/load round trips, and checkpoints as player specs."""

import numpy as np
import pytest
import torch

from pnyx.agents import as_batch_policy, policy_factory
from pnyx.agents.sequence import START, SequencePolicy, build_net, load_net, load_policy, save_policy
from pnyx.errors import PnyxError

PAYOFFS = [1, -1, 2, 0]
SPECS = {
    "gru": {"kind": "gru", "payoffs": PAYOFFS, "embed": 8, "hidden": 16},
    "transformer": {"kind": "transformer", "payoffs": PAYOFFS, "embed": 8, "d_model": 16, "layers": 2, "heads": 2},
}


def _net(kind, opponent_id=False, seed=0):
    torch.manual_seed(seed)
    return build_net(SPECS[kind] | ({"opponent_id": True} if opponent_id else {})).eval()


def _z(n, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 10))).float()


def _episodes(n, steps, seed=0):
    """Random observation sequences (steps, n) that start with the first-round code."""
    obs = torch.from_numpy(np.random.default_rng(seed).integers(0, 4, size=(steps, n)))
    obs[0] = START
    return obs


def _step_all(net, obs, partner=None, state=None):
    state = net.initial_state(obs.shape[1]) if state is None else state
    logits = []
    for t in range(obs.shape[0]):
        out, _, state = net.step(obs[t], partner, state)
        logits.append(out)
    return torch.stack(logits), state


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_step_by_step_equals_whole_sequence(kind):
    net = _net(kind, opponent_id=kind == "gru")
    obs, partner = _episodes(5, 7), (_z(5) if kind == "gru" else None)
    with torch.no_grad():
        stepped, _ = _step_all(net, obs, partner)
        whole, _ = net.sequence(obs, partner)
    torch.testing.assert_close(stepped, whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_state_resets_at_episode_boundary_per_game(kind):
    net = _net(kind)
    first, second = _episodes(2, 4, seed=1), _episodes(2, 5, seed=2)
    with torch.no_grad():
        _, state = _step_all(net, first)
        # game 0 starts a new episode (the first-round code) while game 1 goes on
        obs = second.clone()
        obs[0, 1] = 2
        carried, _ = _step_all(net, obs, state=state)
        fresh, _ = _step_all(net, second[:, :1])
        continued, _ = _step_all(net, torch.cat([first[:, 1:], obs[:, 1:]]))
    torch.testing.assert_close(carried[:, 0], fresh[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(carried[:, 1], continued[-5:, 0], atol=1e-5, rtol=1e-5)
    # the history matters: without the reset, game 0's outputs differ
    assert not torch.allclose(carried[:, 1], fresh[:, 0], atol=1e-3)


def _saturated(defect: bool):
    net = _net("gru")
    with torch.no_grad():
        net.policy.weight.zero_()
        net.policy.bias.copy_(torch.tensor([0.0, 30.0] if defect else [30.0, 0.0]))
    return net


def test_policy_samples_its_head_and_batches_like_single_games():
    assert SequencePolicy(_saturated(True)).act(START) == 1
    assert SequencePolicy(_saturated(False)).act(START) == 0
    net, obs = _net("gru"), _episodes(64, 6, seed=3).numpy()
    batched = SequencePolicy(net)
    batched.reset_batch(64, seed=7)
    actions = np.stack([batched.act_batch(o) for o in obs])
    again = SequencePolicy(net)
    again.reset_batch(64, seed=7)
    assert np.array_equal(actions, np.stack([again.act_batch(o) for o in obs]))
    # the sampled rate follows the network's defection probability
    with torch.no_grad():
        p = torch.softmax(net.sequence(torch.from_numpy(obs), None)[0], -1)[..., 1].mean().item()
    assert abs(actions.mean() - p) < 0.1
    assert set(np.unique(actions)) == {0, 1}


def test_opponent_z_is_a_step_before_the_episode():
    """The z prefix: the episode starts from the state after one GRU step on the projected z,
    so different z give different first-round policies, and z = 0 is the projection's bias."""
    net = _net("gru", opponent_id=True)
    obs = _episodes(2, 3)
    z = _z(2)
    with torch.no_grad():
        state = net.cell(net.prefix(z), torch.zeros(2, net.hidden))
        state = net.cell(net.inputs(obs[0]), state)
        torch.testing.assert_close(net.sequence(obs, z)[0][0], net.heads(state)[0])
        assert not torch.allclose(net.sequence(obs, z)[0][0], net.sequence(obs, torch.zeros(2, 10))[0][0])
    with pytest.raises(PnyxError, match="opponent_id conditioning needs model kind 'gru'"):
        build_net(SPECS["transformer"] | {"opponent_id": True})


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_save_load_round_trip(tmp_path, kind):
    gru = kind == "gru"
    net = _net(kind, opponent_id=gru, seed=5)
    path = tmp_path / "learner.pt"
    z = [0.25 * k - 1 for k in range(10)] if gru else None
    save_policy(path, net, partner_id=z)
    loaded, partner_id = load_net(path)
    assert partner_id == z and loaded.spec == net.spec
    obs, partner = _episodes(3, 6), (torch.tensor([z] * 3) if gru else None)
    with torch.no_grad():
        assert torch.equal(net.sequence(obs, partner)[0], loaded.sequence(obs, partner)[0])
    a, b = SequencePolicy(net, z), load_policy(path)
    a.reset_batch(3, seed=1)
    b.reset_batch(3, seed=1)
    assert all(np.array_equal(a.act_batch(o), b.act_batch(o)) for o in obs.numpy())


def test_checkpoint_is_a_player_spec(tmp_path):
    from pnyx.population.match import play_batched

    path = tmp_path / "always-defect.pt"
    save_policy(path, _saturated(True))
    factory = policy_factory(str(path))
    policy = as_batch_policy(factory)
    policy.reset_batch(4, seed=0)
    assert policy.act_batch(np.array([START, 0, 1, 3])).tolist() == [1, 1, 1, 1]
    result = play_batched(factory, policy_factory("allc"), payoffs=(1, -1, 2, 0), turns=5, repetitions=3,
                          noise=0.0, seed=np.random.SeedSequence(0))
    assert np.array_equal(result.cooperation, [[0, 0, 0], [1, 1, 1]])
    assert np.array_equal(result.payoff, [[2, 2, 2], [-1, -1, -1]])


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(PnyxError, match="cannot read checkpoint"):
        load_policy(path)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(PnyxError, match="not a pnyx sequence policy"):
        load_policy(path)
    with pytest.raises(PnyxError, match="unknown sequence model kind 'lstm'"):
        build_net({"kind": "lstm", "payoffs": PAYOFFS})


def test_gru_layers_follow_the_papers_description():
    """Appendix A.3.1 (A.3.2: A2C the same): one linear layer per modality (one-hot code,
    one-hot action, scalar reward) into one shared 32-dimensional space, summed, a GRU of
    128 on that 32-wide input, Swish on its output, linear policy and value heads."""
    net = build_net({"kind": "gru", "payoffs": PAYOFFS})
    shapes = {name: (m.in_features, m.out_features) for name, m in net.inputs.named_children()}
    assert shapes == {"obs": (5, 32), "action": (2, 32), "reward": (1, 32)}
    assert all(isinstance(m, torch.nn.Linear) for m in net.inputs.children())
    assert (net.cell.input_size, net.cell.hidden_size) == (32, 128)
    assert isinstance(net.activation, torch.nn.SiLU)
    assert (net.policy.in_features, net.policy.out_features, net.value.out_features) == (128, 2, 1)
    assert net.spec["embedding"] == "shared" and net.spec["swish"] is True
    # summed: the input after CD (own C, partner D) is the three layers' outputs added
    with torch.no_grad():
        code, own, reward = torch.eye(5)[1], torch.tensor([1.0, 0.0]), torch.tensor([-1.0])
        expected = net.inputs.obs(code) + net.inputs.action(own) + net.inputs.reward(reward)
        torch.testing.assert_close(net.inputs(torch.tensor([1]))[0], expected)
        # the first round has no previous action: its one-hot is all zeros, its reward 0
        first = net.inputs.obs(torch.eye(5)[START]) + net.inputs.action.bias + net.inputs.reward.bias
        torch.testing.assert_close(net.inputs(torch.tensor([START]))[0], first)
    # Swish sits between the GRU state and the heads
    state = torch.tensor([[-1.0, 0.0, 2.0] + [0.0] * 125])
    with torch.no_grad():
        torch.testing.assert_close(net.heads(state)[0], net.policy(state * torch.sigmoid(state)))


@pytest.mark.parametrize("embedding", ["shared", "concat"])
def test_gru_steps_in_float64(embedding):
    """Either input runs in the network's float type (the golden runs train in float64)."""
    net = build_net(SPECS["gru"] | {"embedding": embedding}).double()
    logits, values, _ = net.step(torch.tensor([START, 1]), None, net.initial_state(2).double())
    assert logits.dtype == values.dtype == torch.float64


def test_concat_embedding_is_pnyxs_earlier_network(tmp_path):
    """``embedding: concat, swish: false``: three 32-wide embeddings side by side, a 96-wide
    GRU input, the state read by the heads directly; a checkpoint without the two options
    (written before they existed) loads as that network."""
    net = build_net({"kind": "gru", "payoffs": PAYOFFS, "embedding": "concat", "swish": False})
    assert (net.inputs.obs.num_embeddings, net.inputs.action.num_embeddings) == (5, 3)
    assert net.cell.input_size == 96 and isinstance(net.activation, torch.nn.Identity)
    state = torch.tensor([[-1.0, 0.5] + [0.0] * 126])
    with torch.no_grad():
        torch.testing.assert_close(net.heads(state)[0], net.policy(state))
    legacy = {k: v for k, v in net.spec.items() if k not in ("embedding", "swish")}
    torch.save({"format": "pnyx-sequence-policy/1", "model": legacy, "state_dict": net.state_dict(),
                "partner_id": None}, tmp_path / "old.pt")
    loaded, _ = load_net(tmp_path / "old.pt")
    assert loaded.spec == net.spec
    with pytest.raises(PnyxError, match="unknown embedding 'sum'"):
        build_net({"kind": "gru", "payoffs": PAYOFFS, "embedding": "sum"})


def test_learner_flag_marks_a_zero_z():
    """Section 3.1's identity flag: the z step reads one more input, 1 for a learning partner
    (z = 0, appendix A.4.1) and 0 for a tabular one."""
    from pnyx.agents.sequence import learner_flagged
    from pnyx.population.partners import opponent_z

    z = torch.from_numpy(opponent_z(np.array([[1.0, 0.0, 1.0, 0.0, 1.0], [np.nan] * 5]))).float()
    assert learner_flagged(z)[:, -1].tolist() == [0.0, 1.0]
    net = build_net(SPECS["gru"] | {"opponent_id": True, "learner_flag": True})
    assert net.prefix.in_features == 11
    with torch.no_grad():
        state = net.episode_state(z, 2)
        torch.testing.assert_close(state, net.cell(net.prefix(learner_flagged(z)), torch.zeros(2, net.hidden)))
    with pytest.raises(PnyxError, match="learner_flag is a variant of opponent_id"):
        build_net(SPECS["gru"] | {"learner_flag": True})
