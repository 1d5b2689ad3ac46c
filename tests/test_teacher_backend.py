import sys

import pytest
import torch

from teacher.backend import GenerationBackend, TransformersBackend, VLLMBackend, encode_prompt

PROMPTS = ["Passage: the cat sat.\nImplications:\n", "Hi"]


def test_n_samples_per_prompt_and_reproducible(tiny_model, tiny_tokenizer):
    be = TransformersBackend(tiny_model, tiny_tokenizer)
    assert isinstance(be, GenerationBackend)
    a = be.generate(PROMPTS, 3, 12, 1.0, 0.95, seed=1)
    assert len(a) == 2 and all(len(s) == 3 for s in a)
    assert all(isinstance(t, str) for s in a for t in s)
    assert be.generate(PROMPTS, 3, 12, 1.0, 0.95, seed=1) == a  # same seed, same samples
    b = be.generate(PROMPTS, 3, 12, 1.0, 0.95, seed=2)
    assert b != a  # another seed, other samples
    assert len(set(a[0])) > 1  # the samples of one prompt differ from each other


def test_global_rng_untouched(tiny_model, tiny_tokenizer):
    state = torch.get_rng_state()
    TransformersBackend(tiny_model, tiny_tokenizer).generate(PROMPTS, 2, 4, 1.0, 0.95, seed=3)
    assert torch.equal(state, torch.get_rng_state())


def test_left_padding_and_new_tokens_only(tiny_model, tiny_tokenizer):
    be = TransformersBackend(tiny_model, tiny_tokenizer)
    batched = be.generate(PROMPTS, 1, 10, 0.0, 1.0, seed=0)  # greedy
    alone = [be.generate([p], 1, 10, 0.0, 1.0, seed=0)[0] for p in PROMPTS]
    assert batched == alone
    assert not any(p in out[0] for p, out in zip(PROMPTS, batched))
    seen = []
    greedy3 = be.generate(PROMPTS, 3, 10, 0.0, 1.0, seed=0, on_text=lambda p, s, t: seen.append((p, s)))
    assert greedy3 == [[t[0]] * 3 for t in batched]  # greedy n > 1: the same text n times
    assert {(p, s) for p, s in seen} == {(p, s) for p in range(2) for s in range(3)}


def _boost_eos(model, tokenizer, amount):
    eos = tokenizer.eos_token_id

    def hook(_module, _inputs, logits):
        logits = logits.clone()
        logits[..., eos] += amount
        return logits

    return model.lm_head.register_forward_hook(hook)


def test_stops_at_eos(tiny_model, tiny_tokenizer):
    handle = _boost_eos(tiny_model, tiny_tokenizer, 1e4)  # eos is always chosen first
    try:
        out = TransformersBackend(tiny_model, tiny_tokenizer).generate(PROMPTS, 2, 8, 1.0, 0.95, seed=0)
    finally:
        handle.remove()
    assert out == [["", ""], ["", ""]]


def test_streaming_grows_to_final_text(tiny_model, tiny_tokenizer):
    handle = _boost_eos(tiny_model, tiny_tokenizer, 4.0)  # some samples stop early, others run to the limit
    try:
        seen = {}
        be = TransformersBackend(tiny_model, tiny_tokenizer, stream_every=1)
        out = be.generate(PROMPTS, 3, 24, 1.0, 0.95, seed=5, on_text=lambda p, s, t: seen.setdefault((p, s), []).append(t))
        quiet = TransformersBackend(tiny_model, tiny_tokenizer)  # default: decode every 4 tokens
        calls = []
        out4 = quiet.generate(PROMPTS, 3, 24, 1.0, 0.95, seed=5, on_text=lambda p, s, t: calls.append((p, s, t)))
    finally:
        handle.remove()
    assert out4 == out  # streaming does not change the samples
    assert set(seen) == {(p, s) for p in range(2) for s in range(3)}
    lengths = [len(t) for p in out for t in p]
    assert min(lengths) < max(lengths)  # both early-stopped and long samples are covered
    for (p, s), texts in seen.items():
        assert texts[-1] == out[p][s]
        for earlier, later in zip(texts, texts[1:]):
            assert earlier != later
            assert later.startswith(earlier.rstrip("\ufffd"))  # a cut multi-byte char may be completed later
    for p in range(2):
        for s in range(3):
            last = [t for pp, ss, t in calls if (pp, ss) == (p, s)]
            assert last and last[-1] == out[p][s]
    assert len(calls) < sum(len(v) for v in seen.values())  # throttled


def test_bos_not_doubled(tiny_tokenizer):
    ids = encode_prompt(tiny_tokenizer, "<bos>hello")
    assert ids.count(tiny_tokenizer.bos_token_id) <= 1


def test_vllm_missing_is_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(RuntimeError, match=r"^vLLM is not installed: pip install 'seal-agent\[vllm\]'$"):
        VLLMBackend("some/model")


def test_ngram_ban_counts_the_completion_not_the_prompt():
    from teacher.backend import NoRepeatNGramInCompletion
    from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor
    scores = torch.zeros(1, 10)
    prompt_then_6 = torch.tensor([[5, 6, 7, 6]])  # prompt 5 6 7, then 6 generated: (6, 7) is a prompt bigram only
    assert NoRepeatNGramInCompletion(2, start=3)(prompt_then_6, scores.clone())[0].isinf().sum() == 0
    assert NoRepeatNGramLogitsProcessor(2)(prompt_then_6, scores.clone())[0, 7].isinf()  # the built-in bans 7
    repeat = torch.tensor([[5, 6, 7, 6, 8, 6]])  # generated 6 8 6: the bigram (6, 8) would repeat
    banned = NoRepeatNGramInCompletion(2, start=3)(repeat, scores.clone())[0].isinf().nonzero().flatten().tolist()
    assert banned == [8]


def _generated_ids(model, run):
    """The token ids model.generate returns during run(), prompt included."""
    outs, real = [], model.generate

    def spy(*args, **kwargs):
        outs.append(real(*args, **kwargs))
        return outs[-1]

    model.generate = spy
    try:
        run()
    finally:
        del model.generate
    return outs[0]


def _repeats(ids: list[int], n: int) -> int:
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(grams) - len(set(grams))


def test_no_repeat_ngram_in_each_completion(tiny_model, tiny_tokenizer):
    be = TransformersBackend(tiny_model, tiny_tokenizer)
    width = max(len(encode_prompt(tiny_tokenizer, p)) for p in PROMPTS)
    eos = tiny_tokenizer.eos_token_id

    def completions(**kw):
        out = _generated_ids(tiny_model, lambda: be.generate(PROMPTS, 1, 80, 0.0, 1.0, seed=0, **kw))
        return [row[:row.index(eos)] if eos in row else row for row in out[:, width:].tolist()]

    assert any(_repeats(c, 3) for c in completions())  # the random model loops when greedy...
    banned = completions(no_repeat_ngram=3)
    assert max(len(c) for c in banned) == 80
    assert all(_repeats(c, 3) == 0 for c in banned)  # ...and cannot with the ban


def test_vllm_refuses_the_ngram_ban():
    be = VLLMBackend.__new__(VLLMBackend)  # no engine needed: the check comes first
    with pytest.raises(ValueError, match="^teacher.no_repeat_ngram is not available with vLLM"):
        be.generate(PROMPTS, 1, 8, 1.0, 0.95, seed=0, no_repeat_ngram=4)
