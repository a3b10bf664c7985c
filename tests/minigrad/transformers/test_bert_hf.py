"""minigrad.transformers against Hugging Face's transformers: a tiny random BERT made by
transformers and saved in a temporary Hugging Face cache loads by name into minigrad with the
same logits and the same token ids, and minigrad's save_pretrained loads back into
transformers with the same logits. Needs the optional torch and transformers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the oracle is Hugging Face transformers on torch")
transformers = pytest.importorskip(
    "transformers", reason="the oracle is Hugging Face transformers (pip install transformers)"
)

import minigrad as mg  # noqa: E402
from minigrad import transformers as mgt  # noqa: E402

# float32 logits (of order 1) of a 2-layer, width-32 BERT, computed in a different order
# (BLAS, softmax); measured differences are about 5e-7
TOL = 1e-5

WORDS = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] the a movie film was is not very good bad great awful "
    "and but it this that plot actor actors un ##believ ##able ##ably cafe resume naive "
    "play ##ing ##ed ##s over ##act , . ! ? ' - ( ) : ; \" n ##t s i love hate 日 本 e"
).split()

SENTENCES = [
    "The movie was GREAT!",
    "Unbelievable acting... but the plot? Awful.",
    "Café résumé, naïve: it isn't good",  # accents stripped, n't split at the apostrophe
    "overacting actors overplayed it",  # long words cut into ##pieces
    "zyzzyva xylophone quux",  # unknown words become [UNK]
    "日本 loves\tthis\u00a0film\u200b (really)",  # CJK, tab, no-break space, zero-width
]

SEEDS_CONFIG = dict(
    initializer_range=0.2,  # 10x BERT's, so the logits are of order 1 and TOL is 1e-5 of them
    vocab_size=len(WORDS),
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=40,
    type_vocab_size=2,
)


def _cache_layout(root, org_name: str, files_dir):
    """Lay ``files_dir`` out as huggingface_hub caches a download: blobs, a snapshot of
    symlinks, and refs/main naming the commit."""
    import hashlib
    import os
    import shutil

    repo = root / ("models--" + org_name.replace("/", "--"))
    commit = hashlib.sha1(org_name.encode()).hexdigest()
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for f in files_dir.iterdir():
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copy(f, blob)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snap


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    """A tiny random transformers BERT classifier and its tokenizer, as 'tiny-org/tiny-bert'
    in a temporary Hugging Face cache."""
    root = tmp_path_factory.mktemp("hf")
    files = root / "files"
    files.mkdir()
    (files / "vocab.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = transformers.BertConfig(**SEEDS_CONFIG, num_labels=3)
    model = transformers.BertForSequenceClassification(config).eval()
    model.save_pretrained(files)
    tokenizer = transformers.BertTokenizer(str(files / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(files)
    cache = root / "hub"
    _cache_layout(cache, "tiny-org/tiny-bert", files)
    # a pre-training checkpoint (encoder + cls.* heads, no classifier), as bert-base-uncased
    base = root / "base"
    transformers.BertForPreTraining(transformers.BertConfig(**SEEDS_CONFIG)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    _cache_layout(cache, "tiny-bert-uncased", base)
    return cache, model, tokenizer


@pytest.fixture
def use_cache(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache[0]))
    return hf_cache


def _hf_logits(model, enc):
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(np.asarray(enc["input_ids"])),
            attention_mask=torch.tensor(np.asarray(enc["attention_mask"])),
            token_type_ids=torch.tensor(np.asarray(enc["token_type_ids"])),
        )
    return out.logits.detach().numpy()


def test_tokenizer_gives_transformers_token_ids(use_cache):
    _, _, hf_tok = use_cache
    tok = mgt.BertTokenizer.from_pretrained("tiny-org/tiny-bert")
    for s in SENTENCES:
        assert tok.tokenize(s) == hf_tok.tokenize(s), s
        assert tok.encode(s) == hf_tok.encode(s), s
    assert "[UNK]" in tok.tokenize(SENTENCES[4]) and "##act" in tok.tokenize(SENTENCES[3])
    assert tok.tokenize(SENTENCES[2])[:2] == ["cafe", "resume"]
    ours = tok(SENTENCES[:3], SENTENCES[3:], padding=True, truncation=True, max_length=12)
    theirs = hf_tok(SENTENCES[:3], SENTENCES[3:], padding=True, truncation=True, max_length=12)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert ours[key] == theirs[key], key
    ids = tok.encode(SENTENCES[0])
    assert tok.decode(ids, skip_special_tokens=True) == hf_tok.decode(ids, skip_special_tokens=True)


def test_auto_classes_load_by_name_and_give_the_same_logits(use_cache):
    _, hf_model, hf_tok = use_cache
    tok = mgt.AutoTokenizer.from_pretrained("tiny-org/tiny-bert")
    model = mgt.AutoModelForSequenceClassification.from_pretrained("tiny-org/tiny-bert")
    assert isinstance(model, mgt.BertForSequenceClassification) and not model.training
    enc = tok(SENTENCES, padding=True, return_tensors="np")
    logits = model(**enc).logits.detach().numpy()
    expected = _hf_logits(hf_model, hf_tok(SENTENCES, padding=True, return_tensors="np"))
    assert logits.shape == (len(SENTENCES), 3)
    assert np.abs(expected).max() > 0.3  # large enough for TOL to mean something
    np.testing.assert_allclose(logits, expected, atol=TOL, rtol=0)
    # padding does not change a sentence's logits
    alone = model(**tok([SENTENCES[0]], return_tensors="np")).logits.detach().numpy()
    np.testing.assert_allclose(alone[0], logits[0], atol=TOL, rtol=0)


def test_bert_model_and_token_classifier_load_the_same_weights(use_cache):
    _, hf_model, hf_tok = use_cache
    enc = hf_tok(SENTENCES, padding=True, return_tensors="np")
    base = mgt.BertModel.from_pretrained("tiny-org/tiny-bert")  # drops the "bert." prefix
    with torch.no_grad():
        hf = hf_model.bert(**{k: torch.tensor(v) for k, v in enc.items()})
    out = base(**enc)
    np.testing.assert_allclose(
        out.last_hidden_state.detach().numpy(), hf.last_hidden_state.numpy(), atol=TOL
    )
    np.testing.assert_allclose(
        out.pooler_output.detach().numpy(), hf.pooler_output.numpy(), atol=TOL
    )
    with pytest.raises(
        ValueError,
        match=r"'classifier.bias' has shape \(3,\).*expects \(5,\); pass ignore_mismatched_sizes",
    ):
        mgt.BertForTokenClassification.from_pretrained("tiny-org/tiny-bert", num_labels=5)
    with pytest.warns(
        UserWarning, match="has no classifier.weight, classifier.bias of the right shape"
    ):
        tagger = mgt.BertForTokenClassification.from_pretrained(
            "tiny-org/tiny-bert", num_labels=5, ignore_mismatched_sizes=True
        )
    assert tagger(**enc).logits.shape == (len(SENTENCES), enc["input_ids"].shape[1], 5)


def test_old_checkpoints_gamma_beta_names_and_prefixless_keys(tmp_path, use_cache):
    """bert-base-uncased's file names LayerNorm's weight and bias gamma and beta, and holds
    the encoder without the "bert." prefix in some conversions."""
    _, hf_model, hf_tok = use_cache
    folder = tmp_path / "old"
    hf_model.bert.save_pretrained(folder)
    state = mg.load(folder / "model.safetensors")
    renamed = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): v
        for k, v in state.items()
    }
    assert any(k.endswith("gamma") for k in renamed)
    mg.save(renamed, folder / "model.safetensors", metadata={"format": "pt"})
    enc = hf_tok(SENTENCES, padding=True, return_tensors="np")
    ours = mgt.BertModel.from_pretrained(folder)(**enc).last_hidden_state.detach().numpy()
    with torch.no_grad():
        hf = hf_model.bert(**{k: torch.tensor(v) for k, v in enc.items()}).last_hidden_state
    np.testing.assert_allclose(ours, hf.numpy(), atol=TOL, rtol=0)


def test_minigrad_save_pretrained_loads_in_transformers(tmp_path, use_cache):
    mg.manual_seed(3)
    config = mgt.BertConfig(**SEEDS_CONFIG, num_labels=2, hidden_act="gelu")
    model = mgt.BertForSequenceClassification(config).eval()
    tok = mgt.BertTokenizer.from_pretrained("tiny-org/tiny-bert")
    model.save_pretrained(tmp_path / "ours")
    tok.save_pretrained(tmp_path / "ours")
    hf_model = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "ours").eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "ours")
    enc = tok(SENTENCES, padding=True, return_tensors="np")
    assert hf_tok(SENTENCES, padding=True)["input_ids"] == enc["input_ids"].tolist()
    np.testing.assert_allclose(
        _hf_logits(hf_model, enc), model(**enc).logits.detach().numpy(), atol=TOL, rtol=0
    )
    # and it reads back into minigrad unchanged
    again = mgt.BertForSequenceClassification.from_pretrained(tmp_path / "ours")
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_the_seed_program_with_only_its_imports_changed(use_cache, tmp_path, monkeypatch):
    """The seed's Hugging Face program, on the tiny cached BERT instead of bert-base-uncased."""
    monkeypatch.chdir(tmp_path)
    texts = ["a great movie", "an awful film", "i love this film", "i hate this plot"] * 12
    labels = [1, 0, 1, 0] * 12
    # -- the seed's program; its import lines were "from transformers import ..." -----------
    from minigrad.transformers import (
        BertForSequenceClassification,
        BertTokenizer,
        Trainer,
        TrainingArguments,
    )

    tokenizer = BertTokenizer.from_pretrained("tiny-bert-uncased")  # was 'bert-base-uncased'
    with pytest.warns(UserWarning, match="has no classifier.weight, classifier.bias; these start"):
        model = BertForSequenceClassification.from_pretrained("tiny-bert-uncased")
    # ----------------------------------------------------------------------------------------
    enc = tokenizer(texts, padding=True, return_tensors="np")
    dataset = [
        {
            "input_ids": enc["input_ids"][i],
            "attention_mask": enc["attention_mask"][i],
            "token_type_ids": enc["token_type_ids"][i],
            "labels": labels[i],
        }
        for i in range(len(texts))
    ]
    train_dataset, test_dataset = dataset[:32], dataset[32:]
    # -- the seed's program, continued unchanged ---------------------------------------------
    training_args = TrainingArguments(
        output_dir="./results",
        num_train_epochs=3,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=64,
        warmup_steps=500,
        weight_decay=0.01,
        logging_dir="./logs",
    )
    trainer = Trainer(
        model=model, args=training_args, train_dataset=train_dataset, eval_dataset=test_dataset
    )
    trainer.train()
    # ----------------------------------------------------------------------------------------
    assert trainer.global_step == 6  # 3 epochs of 2 batches of 16
    assert np.isfinite(trainer.evaluate()["eval_loss"])
    assert (tmp_path / "logs").is_dir()


def test_missing_files_and_pickles_are_refused_clearly(tmp_path, monkeypatch, use_cache):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(mgt.CheckpointNotFoundError) as e:
        mgt.BertForSequenceClassification.from_pretrained("bert-base-uncased")
    message = str(e.value)
    assert "models--bert-base-uncased" in message and "hf download bert-base-uncased" in message
    assert str(tmp_path / "empty-cache") in message
    with pytest.raises(mgt.CheckpointNotFoundError, match="vocab.txt for 'nobody/nothing'"):
        mgt.BertTokenizer.from_pretrained("nobody/nothing")
    folder = tmp_path / "pickled"
    folder.mkdir()
    mgt.BertConfig(**SEEDS_CONFIG).save_pretrained(folder)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(
        ValueError, match="pytorch_model.bin but no model.safetensors.*never loads pickle"
    ):
        mgt.BertModel.from_pretrained(folder)
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ValueError, match="is a 'gpt2' model; minigrad.transformers has BERT only"):
        mgt.AutoModel.from_pretrained(folder)
