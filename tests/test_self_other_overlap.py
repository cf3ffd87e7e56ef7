"""Self-other overlap on the embedded model, and SOO fine-tuning with LoRA adapters."""

import json

import pytest
import torch

from pnyx.agents.llm.registry import MODELS
from pnyx.errors import PnyxError
from pnyx.population import self_other_overlap as soo
from pnyx.stats import Estimate


@pytest.fixture(scope="module")
def embedded():
    import torch

    threads = torch.get_num_threads()
    yield MODELS.make("embedded", threads=1)
    torch.set_num_threads(threads)


def test_shipped_pairs_are_the_generated_ones():
    assert soo.PAIRS_FILE.read_text() == soo.pairs_jsonl(soo.generate_pairs())
    pairs = soo.load_pairs()
    assert len(pairs) == len(soo.TEMPLATES) * len(soo.OTHERS) == 40


def test_a_pair_differs_only_in_whom_it_names():
    for pair in soo.load_pairs():
        assert soo.SELF in pair.self
        names = [other for other in soo.OTHERS if pair.self.replace(soo.SELF, other) == pair.other]
        assert len(names) == 1, pair


def test_held_out_pairs_are_unseen_templates():
    train, held = soo.split_pairs(soo.load_pairs(), held_out=2)
    assert (len(train), len(held)) == (30, 10)
    assert {p.template for p in held} == {"t6", "t7"}
    assert not {p.template for p in train} & {p.template for p in held}
    with pytest.raises(PnyxError, match="held_out=8"):
        soo.split_pairs(soo.load_pairs(), held_out=8)


def test_a_users_file_in_the_same_form(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"key": "a", "template": "x", "self": "Help yourself?", "other": "Help Kim?"}) + "\n")
    assert soo.load_pairs(path) == [soo.PromptPair("a", "x", "Help yourself?", "Help Kim?")]
    path.write_text('{"key": "a", "template": "x", "self": "Help yourself?"}\n')
    with pytest.raises(PnyxError, match=r"pairs.jsonl:1: needs non-empty strings other"):
        soo.load_pairs(path)
    path.write_text("")
    with pytest.raises(PnyxError, match="holds no records"):
        soo.load_pairs(path)


def test_default_layers():
    assert soo.default_layers(30) == [7, 15, 22, 29]
    assert soo.default_layers(2) == [0, 1]


def test_overlap_needs_a_transformers_model():
    with pytest.raises(PnyxError, match="open-weights model on the transformers backend"):
        soo.self_other_overlap(MODELS.make("scripted"), soo.load_pairs()[:1])


def test_identical_prompts_are_at_distance_zero(embedded):
    pair = soo.load_pairs()[0]
    same = [soo.PromptPair("same", "t", pair.self, pair.self)]
    result = soo.self_other_overlap(embedded, same, [3, 15])
    assert {layer: e.value for layer, e in result.items()} == {3: 0.0, 15: 0.0}


def test_known_distances_on_fixed_pairs(embedded):
    network, tokenizer = soo.causal_lm(embedded)
    pairs = soo.load_pairs()[:2]
    distances = soo.pair_distances(network, tokenizer, pairs, [3, 15])
    assert distances.tolist() == [[pytest.approx(0.0020629, rel=1e-3), pytest.approx(0.653329, rel=1e-3)],
                                  [pytest.approx(0.0019349, rel=1e-3), pytest.approx(0.716053, rel=1e-3)]]
    alone = soo.pair_distances(network, tokenizer, pairs[:1], [3, 15])
    assert alone[0].tolist() == pytest.approx(distances[0].tolist(), rel=1e-4)  # batching does not change a pair
    result = soo.self_other_overlap(embedded, pairs, [15, 3])
    assert list(result) == [3, 15]
    assert result[15].value == pytest.approx(distances[:, 1].mean(), rel=1e-9)
    assert result[15].n == 2 and result[15].low <= result[15].value <= result[15].high


def test_bad_layers_are_one_line_errors(embedded):
    pairs = soo.load_pairs()[:1]
    with pytest.raises(PnyxError, match=r"layer 30 out of range: the model has 30 decoder layers \(0-29\)"):
        soo.self_other_overlap(embedded, pairs, [30])
    with pytest.raises(PnyxError, match="has no module 'mlp.nothing'"):
        soo.self_other_overlap(embedded, pairs, [3], module="mlp.nothing")


def test_finetuning_lowers_the_overlap_on_held_out_pairs(tmp_path):
    pytest.importorskip("peft")
    from pnyx.population.soo_finetuning import SOOTraining, finetune

    model = MODELS.make("embedded", threads=1)
    train, held = soo.split_pairs(soo.load_pairs())
    settings = SOOTraining(layers=(3,), steps=20, batch_pairs=4, lr=2e-3, kl_weight=0.0, seed=0)
    result = finetune(model, train, held, settings, out=tmp_path / "adapter")
    assert result.layers == [3]
    assert result.before[0] == pytest.approx(0.00641, rel=0.05)
    assert result.after[0] < result.before[0] / 10
    assert len(result.history) == 20 and result.history[-1]["soo"] < result.history[0]["soo"]
    assert result.latent_before > 0 and result.latent_after > 0  # the authors' measure, recorded beside pnyx's

    adapted = MODELS.make(f"embedded(adapter='{tmp_path / 'adapter'}', threads=1)")
    assert adapted.name.startswith("embedded:") and f"(adapter={tmp_path / 'adapter'}@" in adapted.name
    reloaded = soo.self_other_overlap(adapted, held, [3])
    assert reloaded[3].value == pytest.approx(result.after[0], rel=1e-2)


def test_the_preservation_term_is_measured():
    pytest.importorskip("peft")
    from pnyx.population.soo_finetuning import SOOTraining, finetune

    model = MODELS.make("embedded", threads=1)
    pairs = soo.load_pairs()
    result = finetune(model, pairs[:2], pairs[-1:], SOOTraining(layers=(1,), steps=2, batch_pairs=1, seed=0))
    assert result.history[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # LoRA starts as the identity
    assert result.history[1]["kl"] > 0.0
    assert result.history[1]["loss"] == pytest.approx(result.history[1]["soo"] + result.history[1]["kl"], rel=1e-5)


def test_a_missing_adapter_folder_is_a_one_line_error(tmp_path):
    pytest.importorskip("peft")
    with pytest.raises(PnyxError, match="has no adapter_config.json"):
        MODELS.make(f"embedded(adapter='{tmp_path}')")


def test_latent_soo_follows_the_authors_measure(embedded):
    network, tokenizer = soo.causal_lm(embedded)
    pairs = soo.load_pairs()
    same_length = [p for p in pairs if len(tokenizer(p.self)["input_ids"]) == len(tokenizer(p.other)["input_ids"])]
    other_length = [p for p in pairs if p not in same_length]
    assert same_length and other_length
    identical = [soo.PromptPair("same", "t", p.self, p.self) for p in same_length[:2]]
    assert soo.latent_soo(embedded, identical) == (Estimate(0.0, 0.0, 0.0, 2), 0)
    undefined, skipped = soo.latent_soo(embedded, other_length[:3])
    assert undefined.value is None and skipped == 3
    one, skipped = soo.latent_soo(embedded, [same_length[0], other_length[0]])
    assert skipped == 1 and one.value > 0 and one.n == 1
    # the mean over every linear module (LoRA's excluded, the output head included) of the full-sequence MSE
    outputs = []
    for text in (same_length[0].self, same_length[0].other):
        captured = {}
        handles = [module.register_forward_hook(lambda _m, _i, out, name=name: captured.setdefault(name, out.float()))
                   for name, module in network.named_modules() if isinstance(module, torch.nn.Linear)]
        with torch.inference_mode():
            network(**tokenizer(text, return_tensors="pt"), use_cache=False)
        for handle in handles:
            handle.remove()
        outputs.append(captured)
    by_module = [((outputs[0][name] - outputs[1][name]) ** 2).mean().item() for name in outputs[0]]
    assert "lm_head" in outputs[0] and one.value == pytest.approx(sum(by_module) / len(by_module), rel=1e-5)
