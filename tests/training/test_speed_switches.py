"""The exact speed switches of issue 22 on the micro recipe: the text cache and one optimizer
over every discriminator give the weights of the plain step bit for bit, resume either way;
channels-last reaches every convolution of G, the Ds and the matcher's image tower."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from t2i_stages.errors import T2IError
from t2i_stages.training import Trainer, prepare_run_folder, train
from t2i_stages.training.optimizers import merge_states, split_state
from t2i_stages.training.runtime import Runtime
from t2i_stages.training.text_cache import TextCache
from t2i_stages.types import TextFeatures

# 16 images with one caption each, batch 8: every caption comes back from the second epoch on
RECUR = (
    "data.dataset.params.min_captions=1",
    "data.dataset.params.max_captions=1",
    "data.dataset.params.train_size=16",
)
QUIET = dict(log=lambda *a, **k: None, evaluate=False)
CL = torch.channels_last


def _trainer(recipe, registry, out):
    prepare_run_folder(recipe, registry, out, resume=False, log=lambda *a, **k: None)
    return Trainer(recipe, registry, out, Runtime.create("cpu"), log=lambda *a, **k: None)


def _steps(t, n):
    batches, logs = t.batches(), []
    for _ in range(n):
        logs.append(t.train_step([t.to_device(next(batches))]))
        t.step += 1
    return logs


def _weights(t):
    states = {"G": t.G.state_dict(), "EMA": t.ema.model.state_dict()}
    states.update({f"D{i}": d.state_dict() for i, d in enumerate(t.Ds)})
    return states


def _assert_equal(a, b):
    for comp in a:
        for k in a[comp]:
            assert torch.equal(a[comp][k], b[comp][k]), f"{comp}.{k} differs"


def _assert_optimizer_states_equal(a, b):
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for k, v in a["state"][i].items():
            assert torch.equal(v, b["state"][i][k]), f"state {i}.{k} differs"


# ---------------------------------------------------------------- text cache


def test_text_cache_gives_bit_identical_losses_and_weights(micro, registry, tmp_path):
    plain = _trainer(micro(*RECUR), registry, tmp_path / "plain")
    cached = _trainer(micro(*RECUR, "train.text_cache=true"), registry, tmp_path / "cached")
    logs_plain, logs_cached = _steps(plain, 6), _steps(cached, 6)
    for step, (a, b) in enumerate(zip(logs_plain, logs_cached, strict=True)):
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"step {step + 1}: {k} {a[k]} != {b[k]}"
    _assert_equal(_weights(plain), _weights(cached))
    stats = cached.gan.text_cache.stats()
    assert stats["enabled"], stats["disabled_because"]
    # steps 3-6 (the second and third epochs) come whole from the cache: 4 batches of 8
    assert stats["hits"] >= 32 and stats["captions"] == 16, stats
    assert plain.gan.text_cache is None


def test_a_resumed_run_with_the_cache_matches_an_uninterrupted_one(micro, registry, tmp_path):
    """The cache is not checkpointed; the resumed run refills it and trains the same weights
    as a run that never stopped and never cached."""
    ov = (*RECUR, "train.ckpt_every=3")
    full = train(micro(*ov, "train.max_steps=8"), registry, tmp_path / "full", **QUIET)
    cached = (*ov, "train.text_cache=true")
    train(micro(*cached, "train.max_steps=3"), registry, tmp_path / "cut", **QUIET)
    resumed = train(
        micro(*cached, "train.max_steps=8"), registry, tmp_path / "cut", resume=True, **QUIET
    )
    assert resumed["trainer"].step == 8  # steps 7 and 8 (epoch 4) come from the cache
    assert resumed["trainer"].gan.text_cache.stats()["hits"] > 0
    _assert_equal(_weights(full["trainer"]), _weights(resumed["trainer"]))


class _Encoder(torch.nn.Module):
    """A small frozen encoder: words (B, D, T) laid out transposed, as the DAMSM RNN's are.
    ``batch_dependent`` adds the batch mean, as an encoder that mixes captions would."""

    def __init__(self, batch_dependent: bool = False):
        super().__init__()
        self.embed = torch.nn.Embedding(20, 6)
        self.batch_dependent = batch_dependent
        self.eval().requires_grad_(False)

    def encode(self, tokens, mask):
        with torch.no_grad():
            e = self.embed(tokens) * mask[:, :, None]  # (B, T, D)
            if self.batch_dependent:
                e = e + e.mean(0, keepdim=True)
            return TextFeatures(e.transpose(1, 2), e.sum(1), mask, mask.sum(1))


def _captions(n=12, t=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 20, (n, t), generator=g)
    mask = torch.arange(t)[None] < torch.randint(1, t + 1, (n,), generator=g)[:, None]
    return tokens * mask, mask


def _serve(cache, enc, steps=30, b=4, seed=0):
    """Random batches of a fixed caption pool; every result must equal encoding, strides too."""
    tokens, mask = _captions()
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, tokens.shape[0], (b,), generator=g)
        got, want = cache.features(tokens[idx], mask[idx]), enc.encode(tokens[idx], mask[idx])
        for name, x, y in zip(TextFeatures._fields, got, want, strict=True):
            if y is None:  # the token ids: the step attaches them, not the cache
                assert x is None, name
                continue
            assert torch.equal(x, y) and x.dtype == y.dtype, name
            assert x.stride() == y.stride(), name


def test_cached_features_keep_values_dtype_and_layout():
    enc = _Encoder()
    cache = TextCache(enc, enc.encode, 1 << 20, log=lambda *_: None)
    _serve(cache, enc)
    stats = cache.stats()
    assert stats["hits"] > 0 and stats["captions"] <= 12


def test_the_cache_turns_itself_off_where_features_depend_on_the_batch():
    enc, said = _Encoder(batch_dependent=True), []
    cache = TextCache(enc, enc.encode, 1 << 20, log=said.append)
    _serve(cache, enc)
    assert cache.disabled and "depend on the batch" in cache.disabled
    assert cache.stats()["hits"] == 0 and cache.stats()["captions"] == 0
    assert any("train.text_cache is off" in s for s in said)


def test_the_cache_drops_its_entries_when_the_encoders_weights_change():
    enc = _Encoder()
    cache = TextCache(enc, enc.encode, 1 << 20, log=lambda *_: None)
    _serve(cache, enc)
    before = cache.namespace
    with torch.no_grad():
        enc.embed.weight.mul_(2.0)  # an in-place change, as load_state_dict makes
    _serve(cache, enc, seed=1)  # every batch still equals the encoder's new features
    assert cache.namespace != before


def test_the_memory_bound_caps_the_entries_and_stays_exact():
    enc = _Encoder()
    row = 4 * 6 * 5 + 4 * 6 + 5 + 8  # words, sentence (fp32), mask (bool), length (int64)
    cache = TextCache(enc, enc.encode, 5 * row, log=lambda *_: None)
    _serve(cache, enc)
    stats = cache.stats()
    assert stats["captions"] == 5 and stats["uncached"] > 0


def test_the_cache_refuses_an_encoder_that_is_not_frozen():
    enc = _Encoder().requires_grad_(True)
    with pytest.raises(T2IError, match=r"^train\.text_cache: the text encoder is not frozen"):
        TextCache(enc, enc.encode, 1 << 20)
    enc = _Encoder().train()
    with pytest.raises(T2IError, match="train mode"):
        TextCache(enc, enc.encode, 1 << 20)


# ---------------------------------------------------------------- one optimizer over the Ds


@pytest.mark.parametrize("fused", ["true", "false"])
def test_merged_d_optimizer_gives_the_weights_of_separate_ones(micro, registry, tmp_path, fused):
    ov = (f"train.fused_optimizer={fused}",)
    sep = _trainer(micro(*ov), registry, tmp_path / "separate")
    one = _trainer(micro(*ov, "train.merge_d_optimizers=true"), registry, tmp_path / "merged")
    assert len(sep.opt_ds) == 2 and len(one.opt_ds) == 1
    assert len(one.opt_ds[0].param_groups) == 2
    _steps(sep, 3), _steps(one, 3)
    _assert_equal(_weights(sep), _weights(one))
    from t2i_stages.training.state import discriminator_states

    for a, b in zip(discriminator_states(sep), discriminator_states(one), strict=True):
        _assert_optimizer_states_equal(a, b)


def test_split_and_merge_of_optimizer_states_are_inverse():
    params = [[torch.nn.Parameter(torch.randn(3)) for _ in range(n)] for n in (2, 3)]
    opt = torch.optim.Adam([{"params": ps} for ps in params], lr=0.1)
    for ps in params:
        for p in ps:
            p.grad = torch.randn(3)
    opt.step()
    state = opt.state_dict()
    parts = split_state(state)
    assert [len(p["param_groups"][0]["params"]) for p in parts] == [2, 3]
    assert parts[1]["param_groups"][0]["params"] == [0, 1, 2]
    _assert_optimizer_states_equal(merge_states(parts), state)
    with pytest.raises(ValueError, match="discriminator 0: .* 2 parameter groups"):
        merge_states([state])


@pytest.mark.parametrize("first,second", [("true", "false"), ("false", "true")])
def test_a_checkpoint_resumes_with_the_other_optimizer_setting(
    micro, registry, tmp_path, first, second
):
    ov = ("train.ckpt_every=2",)
    full = train(micro(*ov, "train.max_steps=4"), registry, tmp_path / "full", **QUIET)
    cut = tmp_path / "cut"
    train(micro(*ov, "train.max_steps=2", f"train.merge_d_optimizers={first}"), registry, cut,
          **QUIET)  # fmt: skip
    resumed = train(
        micro(*ov, "train.max_steps=4", f"train.merge_d_optimizers={second}"),
        registry, cut, resume=True, **QUIET,
    )  # fmt: skip
    assert resumed["trainer"].step == 4
    _assert_equal(_weights(full["trainer"]), _weights(resumed["trainer"]))


# ---------------------------------------------------------------- channels-last coverage


class _ConvLayouts(TorchDispatchMode):
    """Records the layout of every forward convolution's input and weight, functional ones
    (UpBlock's transposed conv) included."""

    def __init__(self):
        super().__init__()
        self.count, self.wrong = 0, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution.default:
            self.count += 1
            for what, t in (("input", args[0]), ("weight", args[1])):
                if t.dim() == 4 and not t.is_contiguous(memory_format=CL):
                    self.wrong.append(f"{what} {tuple(t.shape)} strides {t.stride()}")
        return func(*args, **(kwargs or {}))


def test_channels_last_reaches_every_convolution(micro, registry, tmp_path):
    """Every convolution of a training step (G, the Ds, the matcher's image tower) gets a
    channels-last weight and a channels-last input (a plain-layout input would make oneDNN
    convert it, or run the plain kernels)."""
    t = _trainer(micro("train.channels_last=true"), registry, tmp_path)
    parts = {"G": t.G, "matcher": t.assembly.matcher, **{f"D{i}": d for i, d in enumerate(t.Ds)}}
    seen = set()
    for part, module in parts.items():
        for m in module.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.register_forward_pre_hook(lambda *_, part=part: seen.add(part))
    batch = t.to_device(next(t.batches()))
    with _ConvLayouts() as layouts:
        t.train_step([batch])
    assert seen == set(parts)  # the matcher's image tower ran too
    assert layouts.count > 20 and layouts.wrong == []
    plain = _trainer(micro(), registry, tmp_path / "plain")  # the check can fail
    with _ConvLayouts() as layouts:
        plain.train_step([plain.to_device(next(plain.batches()))])
    assert len(layouts.wrong) > 20
