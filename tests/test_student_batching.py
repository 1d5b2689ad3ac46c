import pytest
import torch

from student.batching import IGNORE_INDEX, encode_texts, mean_nll, pad_batch, sequence_nll, tokenize_texts
from student.config import AnswerSettings, LoraSettings, TrainSettings
from student.prompts import RAW_QUESTION_TEMPLATE, prompt_ids, question_prompt
from tests.conftest import make_tiny_tokenizer

TEXTS = ["Paris is the capital of France.", "Hi", "Water boils at 100 degrees Celsius at sea level."]


def _loss(model, batch):
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return logits, batch["labels"]


def test_encode_texts_right_pads_masks_and_appends_eos(tiny_tokenizer):
    tok = tiny_tokenizer
    b = encode_texts(tok, TEXTS, max_len=256)
    lengths = [len(t.encode()) + 1 for t in TEXTS]  # byte tokens + eos
    assert b["input_ids"].shape == (3, max(lengths))
    assert b["attention_mask"].sum(1).tolist() == lengths
    for i, n in enumerate(lengths):
        assert b["input_ids"][i, n - 1] == tok.eos_token_id
        assert (b["input_ids"][i, n:] == tok.pad_token_id).all()
        assert (b["attention_mask"][i, :n] == 1).all()  # right padding
    assert torch.equal(b["labels"] == IGNORE_INDEX, b["attention_mask"] == 0)
    assert torch.equal(b["labels"][b["attention_mask"] == 1], b["input_ids"][b["attention_mask"] == 1])


def test_eos_is_trained_even_when_pad_equals_eos():
    tok = make_tiny_tokenizer(pad_is_eos=True)
    b = encode_texts(tok, ["ab", "abcd"], max_len=16)
    assert b["labels"][0].tolist() == [*tok("ab")["input_ids"], tok.eos_token_id, IGNORE_INDEX, IGNORE_INDEX]


def test_truncation_and_no_eos(tiny_tokenizer):
    ids = tokenize_texts(tiny_tokenizer, ["abcdefgh"], max_len=4)
    assert ids == [tiny_tokenizer("abcd")["input_ids"]]
    ids = tokenize_texts(tiny_tokenizer, ["ab"], max_len=8, add_eos=False)
    assert ids == [tiny_tokenizer("ab")["input_ids"]]


def test_padded_batch_loss_equals_unpadded(tiny_model, tiny_tokenizer):
    tok = tiny_tokenizer
    batch = encode_texts(tok, TEXTS, max_len=256)
    batched = mean_nll(*_loss(tiny_model, batch))

    sums, counts = [], []
    for text in TEXTS:  # each text alone: no padding at all
        s, c = sequence_nll(*_loss(tiny_model, encode_texts(tok, [text], max_len=256)))
        sums.append(s.item())
        counts.append(c.item())
    assert counts == [len(t.encode()) for t in TEXTS]  # real tokens after the first (= +eos -1)
    expected = torch.tensor(sum(sums) / sum(counts))
    assert torch.allclose(batched, expected, atol=1e-5), (batched, expected)

    # extra padding columns change nothing either
    seqs = tokenize_texts(tok, TEXTS, 256)
    wide = pad_batch([s + [tok.pad_token_id] * 7 for s in seqs], tok.pad_token_id, labels=[s + [IGNORE_INDEX] * 7 for s in seqs])
    assert torch.allclose(mean_nll(*_loss(tiny_model, wide)), batched, atol=1e-5)


def test_loss_is_not_diluted_by_padding(tiny_model, tiny_tokenizer):
    """Mean over real tokens: a short text's loss does not shrink when batched beside a long one."""
    short = encode_texts(tiny_tokenizer, ["Hi"], max_len=256)
    s, c = sequence_nll(*_loss(tiny_model, short))
    both = encode_texts(tiny_tokenizer, ["Hi", "x" * 100], max_len=256)
    s2, c2 = sequence_nll(*_loss(tiny_model, both))
    assert c2.tolist() == [2, 100]
    assert torch.allclose(s2[0], s[0], atol=1e-5)


def test_pad_batch_left():
    b = pad_batch([[5, 6, 7], [8]], pad_id=0, side="left")
    assert b["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert b["labels"].tolist() == [[5, 6, 7], [IGNORE_INDEX, IGNORE_INDEX, 8]]


def test_settings_defaults_and_validation():
    assert LoraSettings() == LoraSettings(r=32, alpha=64, dropout=0.0, target_modules="all-linear")
    t = TrainSettings()
    assert (t.lr, t.epochs, t.batch_size, t.max_len, t.seed, t.grad_clip, t.schedule) == (1e-3, 10, 8, 256, 0, 1.0, "linear")
    a = AnswerSettings()
    assert (a.max_new_tokens, a.question_format, a.batch_size) == (48, "chat", 16)
    with pytest.raises(ValueError):
        AnswerSettings(question_format="xml")
    with pytest.raises(ValueError):
        TrainSettings(schedule="exp")


def test_question_prompts(tiny_tokenizer):
    raw = question_prompt(tiny_tokenizer, "Who won?", "raw")
    assert raw == "Let's answer a question directly and concisely.\nQuestion: Who won?\nAnswer:\n"
    chat = question_prompt(tiny_tokenizer, "Who won?", "chat")
    assert chat == f"<|user|>{raw}<eos><|assistant|>"
    assert prompt_ids(tiny_tokenizer, "Who won?", "chat")[0] == tiny_tokenizer.convert_tokens_to_ids("<|user|>")
    no_chat = make_tiny_tokenizer(chat=False)
    assert question_prompt(no_chat, "Who won?", "chat") == RAW_QUESTION_TEMPLATE.format(question="Who won?")
    with pytest.raises(ValueError):
        question_prompt(tiny_tokenizer, "Who won?", "xml")
