"""Tokenizers: round trips (property tests), <unk> for unseen text, batches, JSON."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad.data.text import BPETokenizer, CharTokenizer, Tokenizer, WordTokenizer

CORPUS = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
    "You are all resolved rather to die than to famish?\n"
)
ALPHABET = sorted(set(CORPUS))
char_tok = CharTokenizer.train(CORPUS)
bpe_tok = BPETokenizer.train(CORPUS, vocab_size=80)
word_tok = WordTokenizer.train(CORPUS)


@given(st.text(alphabet=ALPHABET, max_size=60))
def test_char_and_bpe_round_trip_any_covered_string(s):
    assert char_tok.decode(char_tok.encode(s)) == s
    assert bpe_tok.decode(bpe_tok.encode(s)) == s
    assert 1 not in bpe_tok.encode(s)  # covered text never becomes <unk>


@given(st.lists(st.sampled_from(word_tok.itos[2:]), max_size=12))
def test_word_round_trip_on_the_text_it_covers(words):
    s = " ".join(words)
    assert word_tok.decode(word_tok.encode(s)) == s


@given(st.text(max_size=30))
def test_unknown_characters_become_unk_instead_of_crashing(s):
    for tok in (char_tok, bpe_tok, word_tok):
        ids = tok.encode(s)
        assert all(0 <= i < tok.vocab_size for i in ids)
        tok.decode(ids)


def test_specials_unk_and_merges():
    assert char_tok.itos[:2] == ["<pad>", "<unk>"]
    assert char_tok.encode("Fé") == [char_tok.stoi["F"], 1]
    assert len(bpe_tok.tokenize(" speak")) < len(" speak")  # merges learned
    assert bpe_tok.vocab_size == 80
    with pytest.raises(ValueError, match="smaller than the"):
        BPETokenizer.train(CORPUS, vocab_size=10)
    lower = WordTokenizer.train(["The cat", "the dog", "a cat"], min_freq=2, lower=True)
    assert lower.itos[2:] == ["the", "cat"] and lower.encode("THE bird") == [2, 1]


def test_batch_encoding_pads_truncates_and_masks():
    out = bpe_tok.encode_batch(["speak", "speak, speak."], padding=True)
    assert out["input_ids"].shape == out["attention_mask"].shape
    assert out["attention_mask"][0].sum() == len(bpe_tok.encode("speak"))
    assert np.all(out["input_ids"][out["attention_mask"] == 0] == 0)
    cut = char_tok.encode_batch(
        ["abcdef", "ab"], padding="max_length", truncation=True, max_length=4
    )
    assert cut["input_ids"].shape == (2, 4) and cut["attention_mask"].tolist() == [
        [1, 1, 1, 1],
        [1, 1, 0, 0],
    ]
    with pytest.raises(ValueError, match="pass truncation=True"):
        char_tok.encode_batch(["abcdef"], padding="max_length", max_length=3)
    with pytest.raises(ValueError, match="pass padding=True"):
        char_tok.encode_batch(["abc", "a"], padding=False)


def test_save_and_load_json(tmp_path):
    for tok in (char_tok, word_tok, bpe_tok):
        path = tmp_path / f"{tok.kind}.json"
        tok.save(path)
        back = Tokenizer.load(path)
        assert type(back) is type(tok) and back.itos == tok.itos
        assert back.encode(CORPUS) == tok.encode(CORPUS)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        Tokenizer.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"kind": "sentencepiece"}')
    with pytest.raises(ValueError, match="does not hold a minigrad tokenizer"):
        Tokenizer.load(tmp_path / "other.json")


def test_corrupt_tokenizer_files_are_refused_by_name(tmp_path):
    import json

    from minigrad.data.text import BPETokenizer, CharTokenizer, Tokenizer

    def written(payload):
        path = tmp_path / "t.json"
        path.write_text(json.dumps(payload))
        return path

    for payload, message in [
        ({"kind": "char", "vocab": "abc"}, "'vocab' must be a list of non-empty strings"),
        ({"kind": "char", "vocab": ["<pad>", "<unk>", "ab"]}, "holds single characters"),
        ({"kind": "word", "vocab": ["a"], "lower": "yes"}, "'lower' must be true or false"),
        ({"kind": "bpe", "vocab": ["a", "b"], "merges": [["a"]]}, "pairs of non-empty strings"),
        ({"kind": "bpe", "vocab": ["a", "b"], "merges": [["a", "b"]]}, "makes 'ab', not in"),
        ({"kind": "bpe", "vocab": ["a", "a"], "merges": []}, "duplicate tokens"),
        ({"kind": "sentencepiece"}, "does not hold a minigrad tokenizer"),
    ]:
        with pytest.raises(ValueError, match=message):
            Tokenizer.load(written(payload))
    (tmp_path / "bad.json").write_bytes(b'{"kind": "char", "vocab": ["\xff"]}')
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        Tokenizer.load(tmp_path / "bad.json")
    for tokenizer in (CharTokenizer.train("hello"), BPETokenizer.train("hello hello world", 30)):
        tokenizer.save(tmp_path / "ok.json")
        assert Tokenizer.load(tmp_path / "ok.json").encode("hello") == tokenizer.encode("hello")
