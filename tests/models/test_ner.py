"""WNUT-17's metrics as its evaluation script defines them, the tagger's inputs, and the
BiLSTM-CRF tagger of the zoo."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from models.ner import SHAPES, TaggerInputs, entity_spans, wnut_scores, word_shape
from models.text import BiLSTMCRFTagger, CharCNN


def test_entity_f1_needs_the_same_sentence_span_and_type():
    tokens = [["Empire", "State", "Building", "is", "tall"], ["I", "love", "ESB"]]
    gold = [["B-location", "I-location", "I-location", "O", "O"], ["O", "O", "B-location"]]
    predicted = [
        ["B-location", "I-location", "O", "O", "O"],  # too short: wrong
        ["O", "O", "B-location"],  # right
    ]
    s = wnut_scores(tokens, gold, predicted)
    assert s["entity_precision"] == 0.5 and s["entity_recall"] == 0.5
    assert s["entity_f1"] == pytest.approx(0.5)
    predicted[1] = ["O", "O", "B-corporation"]  # right span, wrong type
    assert wnut_scores(tokens, gold, predicted)["entity_f1"] == 0.0


def test_surface_f1_counts_each_distinct_form_once():
    # "ESB" occurs three times; finding it once or thrice is the same for surface forms
    tokens = [["ESB"], ["ESB"], ["ESB"], ["Obama"]]
    gold = [["B-location"], ["B-location"], ["B-location"], ["B-person"]]
    predicted = [["B-location"], ["O"], ["O"], ["O"]]
    s = wnut_scores(tokens, gold, predicted)
    assert s["entity_recall"] == pytest.approx(1 / 4) and s["entity_precision"] == 1.0
    assert s["surface_recall"] == pytest.approx(1 / 2) and s["surface_precision"] == 1.0
    assert s["surface_f1"] == pytest.approx(2 / 3)
    # a surface form counts as found only where the entity itself was right
    predicted = [["B-person"], ["O"], ["O"], ["B-person"]]
    s = wnut_scores(tokens, gold, predicted)
    assert s["surface_precision"] == pytest.approx(1 / 2) and s["surface_recall"] == 0.5


def test_an_inside_tag_without_its_begin_starts_an_entity_as_the_script_reads_it():
    assert entity_spans(["O", "I-person", "I-person", "I-group", "B-group"]) == {
        (1, 3, "person"),
        (3, 4, "group"),
        (4, 5, "group"),
    }


def test_no_predictions_score_zero_not_nan():
    s = wnut_scores([["a"]], [["B-person"]], [["O"]])
    assert all(v == 0.0 for v in s.values())


def test_mismatched_lengths_are_named():
    with pytest.raises(ValueError, match="sentence 0 has 2 tokens, 2 gold tags and 1 predicted"):
        wnut_scores([["a", "b"]], [["O", "O"]], [["O"]])


def test_word_shapes():
    assert len(SHAPES) == 6
    assert word_shape("Paris") == [1, 0, 0, 0, 0, 0]
    assert word_shape("NASA") == [1, 1, 0, 0, 0, 0]
    assert word_shape("iphone7") == [0, 0, 1, 0, 0, 0]
    assert word_shape("@paulwalk") == [0, 0, 0, 1, 0, 0]
    assert word_shape("#WNUT") == [0, 1, 0, 0, 1, 0]
    assert word_shape("http://t.co/x") == [0, 0, 0, 0, 0, 1]
    assert word_shape("@") == [0, 0, 0, 0, 0, 0]


def test_tagger_inputs_pad_and_lower_case():
    train = [["Paris", "is", "nice"], ["paris", "Paris"]]
    tags = ["B-location", "O"]
    inputs = TaggerInputs(train, tags, min_count=2)
    assert set(inputs.word_id) == {"paris"}  # the others are seen once
    batch = inputs.collate([(["PARIS", "rocks"], ["B-location", "O"]), (["x"], ["O"])])
    ids = batch["input_ids"].numpy()
    assert ids.tolist() == [[inputs.word_id["paris"], 1], [1, 0]]
    chars = batch["char_ids"].numpy()
    assert chars.shape == (2, 2, 5) and chars[1, 1].tolist() == [0] * 5
    # "P" was seen, "R" was not (only "r"): character ids keep the case
    assert chars[0, 0, :2].tolist() == [inputs.char_id["P"], 1]
    assert batch["labels"].numpy().tolist() == [[0, 1], [1, -100]]
    assert batch["shapes"].numpy()[0, 0].tolist() == word_shape("PARIS")


def test_bilstm_crf_tagger_counts_trains_decodes_and_round_trips(tmp_path):
    mg.manual_seed(0)
    full = BiLSTMCRFTagger()
    assert sum(p.data.size for p in full.parameters()) == 2_216_758  # as its docstring says
    tags = ["B-person", "I-person", "O"]
    model = BiLSTMCRFTagger(vocab_size=30, num_chars=20, tag_names=tags, hidden=8)
    rng = np.random.default_rng(0)
    ids = mg.tensor(np.array([[3, 4, 5], [6, 7, 0]]))
    chars = mg.tensor(rng.integers(1, 20, (2, 3, 4)))
    shapes = mg.tensor(np.zeros((2, 3, 6), np.float32))
    labels = mg.tensor(np.array([[0, 1, 2], [2, 0, -100]]))
    opt = mg.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        out = model(ids, chars, shapes, labels=labels)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.1 * losses[0]
    model.eval()
    assert model.decode(ids, chars, shapes) == [["B-person", "I-person", "O"], ["O", "B-person"]]
    model.save_pretrained(tmp_path / "m")
    again = BiLSTMCRFTagger.from_pretrained(tmp_path / "m")
    again.eval()
    assert again.decode(ids, chars, shapes) == model.decode(ids, chars, shapes)


def test_char_cnn_convolves_padding_once_with_the_same_outputs_and_gradients():
    mg.manual_seed(0)
    cnn = CharCNN(num_chars=12, char_dim=5, maps=4)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 12, (3, 5, 6))
    ids[0, 3:] = 0  # padding words, and a word with padding characters
    ids[2, 1, 4:] = 0
    weights = mg.tensor(rng.standard_normal((3, 5, 4)).astype(np.float32))

    def every_position(ids):  # one convolution per position, padding included
        x = cnn.embed(mg.tensor(ids.reshape(15, 6))).transpose(1, 2)
        return cnn.conv(x).amax(-1).reshape(3, 5, -1)

    results = []
    for run in (every_position, cnn):
        cnn.zero_grad()
        out = run(ids) if run is every_position else run(mg.tensor(ids))
        (out * weights).sum().backward()
        results.append((out.detach().numpy(), [p.grad.numpy().copy() for p in cnn.parameters()]))
    (expected, expected_grads), (got, grads) = results
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    for g, e in zip(grads, expected_grads):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
