"""The question analysis, the learned ranker and answer decision, and the pluggable reranker.

The learned stages are checked for their plumbing on tiny corpora (weights written by the
test), and for what they do with the real model on the seeds; the cross-encoder path runs a
tiny model built inside the test.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa_bot.article_answer import NO_DATE
from qa_bot.errors import ModelError
from qa_bot.features import CANDIDATE_FEATURES, QUESTION_FEATURES
from qa_bot.query import analyse
from qa_bot.ranker import CrossEncoderReranker, LearnedRanker, LinearModel
from qa_bot.retrieval import load_rankers
from qa_bot.service import QAService
from qa_bot.settings import RetrievalSettings
from qa_bot.text import terms

from .conftest import CountingEmbedder, make_settings, write_article


@pytest.fixture
def small(tmp_path: Path) -> QAService:
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "a.txt",
        "Drone spotted over convoy",
        "An attack drone flew at an altitude of 3,600 meters over the convoy. "
        "It had taken off from the Incirlik air base. Lavrov arranged talks in Geneva.",
        date="2016-09-24",
    )
    write_article(
        seeds,
        "b.txt",
        "Siege of the city",
        "Syrian troops had been besieged by IS in Deir ez-Zor for over two years. "
        "The garrison held the airport.",
    )
    service = QAService(make_settings(tmp_path, seeds), embedder=CountingEmbedder())
    service.index()
    return service


# --- question analysis -------------------------------------------------------------------------


def test_a_word_whose_stem_is_a_stop_word_is_not_searched(small: QAService) -> None:
    lexical = small.snapshot().lexical
    typed = analyse("whats the garrison holding and whos besieged", lexical)
    written = analyse("What is the garrison holding and who is besieged?", lexical)
    assert typed.terms == written.terms == ("garrison", "hold", "besieg")
    assert analyse("what says the siege", lexical).terms == ("siege",)


def test_lowercase_and_capitalised_questions_are_analysed_alike(small: QAService) -> None:
    lexical = small.snapshot().lexical
    upper = analyse("What did Lavrov arrange in Geneva?", lexical)
    lower = analyse("what did lavrov arrange in geneva", lexical)
    assert upper.terms == lower.terms
    assert upper.unknown_share == lower.unknown_share == 0.0


def test_a_dictionary_word_is_searched_as_the_indexed_form_without_a_typo_note(
    small: QAService,
) -> None:
    """ "arrange" where the article says "arranged" (another stem) is no misspelling."""
    query = analyse("where did lavrov arrange talks", small.snapshot().lexical)
    assert query.corrections == {}
    assert "arrang" in query.terms  # searched as the article's "arranged"
    misspelt = analyse("where did lavrov arrangd talks", small.snapshot().lexical)
    assert misspelt.corrections == {"arrangd": ("arrang",)}


def test_a_short_slip_is_read_when_it_has_one_reading(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_article(seeds, "a.txt", "Flying drones", "The drone was flying over the convoy.")
    service = QAService(make_settings(tmp_path, seeds), embedder=CountingEmbedder())
    service.index()
    query = analyse("how high was the drone flyng", service.snapshot().lexical)
    assert query.corrections == {"flyng": ("fly",)}
    assert "fly" in query.terms and query.unknown_words == ("high",)


def test_unknown_words_and_names(small: QAService) -> None:
    lexical = small.snapshot().lexical
    typed = analyse("What did Putin say about the convoy?", lexical)
    assert typed.unknown_names == ("Putin",) and typed.unknown_words == ("Putin",)
    lower = analyse("what did putin say about the convoy", lexical)
    # Lowercase, the speaker of "what did X say" is still a name.
    assert lower.unknown_names == ("putin",) and lower.unknown_words == ("putin",)
    other = analyse("was putin's drone over the convoy", lexical)
    # Elsewhere a lowercase word cannot be told from a name: it weighs in as unknown.
    assert other.unknown_names == () and other.unknown_words == ("putin's",)
    assert lower.unknown_share == pytest.approx(typed.unknown_share)
    assert lower.unknown_share > 0.3


# --- the learned stages --------------------------------------------------------------------------


def _weights(model_id: str, answer_bias: float) -> LearnedRanker:
    """Weights that rank by cosine alone and answer with a fixed bias."""
    n = len(CANDIDATE_FEATURES)
    coef = np.zeros(n)
    coef[CANDIDATE_FEATURES.index("dense")] = 1.0
    return LearnedRanker(
        model_id,
        LinearModel(CANDIDATE_FEATURES, np.zeros(n), np.ones(n), coef, 0.0),
        LinearModel(
            QUESTION_FEATURES,
            np.zeros(len(QUESTION_FEATURES)),
            np.ones(len(QUESTION_FEATURES)),
            np.zeros(len(QUESTION_FEATURES)),
            answer_bias,
        ),
        {"script": "test"},
    )


def test_weights_round_trip_and_bad_files(tmp_path: Path) -> None:
    ranker = _weights("counting-fake", 1.0)
    path = tmp_path / "r.json"
    path.write_text(ranker.to_json(), encoding="utf-8")
    again = LearnedRanker.load(path)
    assert again.model_id == "counting-fake"
    rows = np.random.default_rng(0).normal(size=(4, len(CANDIDATE_FEATURES)))
    assert np.allclose(again.candidates.logits(rows), ranker.candidates.logits(rows))
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="unreadable") as caught:
        LearnedRanker.load(path)
    assert caught.value.exit_code == 5


def test_a_bounded_model_reads_its_inputs_within_the_range_it_was_fitted_on() -> None:
    names = ("a", "b")
    free = LinearModel(names, np.zeros(2), np.array([1.0, 0.01]), np.array([1.0, -0.1]), 0.5)
    bounded = replace(free, low=np.array([-1.0, 0.0]), high=np.array([1.0, 1.0]))
    inside, outside = np.array([[0.5, 1.0]]), np.array([[0.5, 3.0]])
    assert bounded.logits(inside)[0] == pytest.approx(free.logits(inside)[0])
    # 3 is 300 deviations out: read at the bound, not extrapolated to a logit of -29.
    assert free.logits(outside)[0] == pytest.approx(-29.0)
    assert bounded.logits(outside)[0] == pytest.approx(free.logits(inside)[0])
    again = LinearModel.from_json(bounded.to_json())
    assert again.high is not None and list(again.high) == [1.0, 1.0]
    assert "low" not in free.to_json() and LinearModel.from_json(free.to_json()).low is None


def test_the_packaged_weights_are_for_the_packaged_model() -> None:
    packaged = LearnedRanker.load()
    assert packaged.fits("all-MiniLM-L6-v2@5a41c29fc69b")
    assert not packaged.fits("counting-fake")
    assert packaged.candidates.names == CANDIDATE_FEATURES
    assert packaged.answer.names == QUESTION_FEATURES
    assert packaged.provenance["script"] == "training/train_ranker.py"


@pytest.mark.parametrize(("bias", "answered"), [(3.0, True), (-3.0, False)])
def test_the_answer_model_decides(tmp_path: Path, bias: float, answered: bool) -> None:
    seeds = tmp_path / "seeds"
    write_article(seeds, "a.txt", "Drone over convoy", "A drone flew over the convoy at dawn.")
    path = tmp_path / "r.json"
    path.write_text(_weights("counting-fake", bias).to_json(), encoding="utf-8")
    # The answer model alone: no reader's logit joins it.
    settings = make_settings(tmp_path, seeds, retrieval={"ranker_path": path, "reader": "none"})
    service = QAService(settings, embedder=CountingEmbedder())
    service.index()
    retrieval = service.search("what flew over the convoy")
    assert retrieval is not None and retrieval.answerable is answered
    assert "answer model gives" in retrieval.reason
    # The candidate model ranked by cosine: the scores are its probabilities, best first.
    scores = [h.score for h in retrieval.hits]
    assert scores == sorted(scores, reverse=True) and 0.0 < scores[0] < 1.0


def test_weights_for_another_model_leave_the_hand_made_stages(small: QAService) -> None:
    rankers = load_rankers(small.settings.retrieval, small.query_embedder)
    assert rankers.learned is None  # the packaged weights are for all-MiniLM-L6-v2
    retrieval = small.search("Who was besieged in Deir ez-Zor?")
    assert retrieval is not None and "coverage" in retrieval.reason


@pytest.mark.model
def test_the_learned_stages_answer_and_decline_on_the_seeds(seeds_service: QAService) -> None:
    assert seeds_service.rankers.learned is not None
    answered = seeds_service.search("how long were syrian troops besieged at deir ez-zor")
    assert answered is not None and answered.answerable
    assert "answer model" in answered.reason
    assert "two years" in answered.hits[0].chunk.text
    declined = seeds_service.ask("who won the world cup final in 2014")
    assert not declined.answered


@pytest.mark.model
def test_a_name_no_article_mentions_declines_even_a_confident_decision(
    seeds_service: QAService,
) -> None:
    # The learned decision gives these 0.2 to 0.9: it has seen too few questions naming
    # someone the articles never do, and quotes whatever else matches. The veto declines them.
    for question, name in [
        ("Did Erdogan condemn the convoy attack?", "Erdogan"),
        ("How many people did the Oslo convoy attack kill?", "Oslo"),
        ("How fast was the Reaper drone flying?", "Reaper"),
    ]:
        answer = seeds_service.ask(question)
        assert not answer.answered and f"The articles never mention “{name}”." in answer.notes
    # "According to X" names X only: the question it asks is searched and answered.
    casual = seeds_service.ask("according to lavrov whats the most efficient force fighting isil")
    assert casual.answered and not any("never mention" in n for n in casual.notes)
    assert "Syrian army" in casual.citations[0].quote


def test_a_page_without_a_date_is_said_to_state_none(small: QAService) -> None:
    answer = small.ask("When was the article about the siege of the city published?")
    assert answer.answered and answer.text.startswith(NO_DATE)
    assert answer.citations[0].quote == "Siege of the city"
    assert answer.citations[0].article.date_text is None
    dated = small.ask("When was the article about the drone over the convoy published?")
    assert NO_DATE not in dated.text


# --- a cross-encoder by name or path -----------------------------------------------------------


def tiny_bert(folder: Path, words: Sequence[str], *, classifier: bool) -> Path:
    """A two-layer BERT with a word-level vocabulary of ``words``, random but fixed: a
    cross-encoder (one logit) when ``classifier``, else a bare encoder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=1,
    )
    model = BertForSequenceClassification(config) if classifier else BertModel(config)
    model.save_pretrained(folder)
    # Positional: transformers 4 names the argument vocab_file, 5 names it vocab (and ignores
    # vocab_file, leaving every word unknown).
    tokenizer = BertTokenizerFast(str(folder / "vocab.txt"))
    assert tokenizer.convert_tokens_to_ids(words[0]) == len(vocab) - len(words), "vocab not read"
    tokenizer.save_pretrained(folder)
    return folder


def _tiny_cross_encoder(folder: Path) -> Path:
    words = "drone convoy flew over the siege city troops airport air base altitude".split()
    return tiny_bert(folder, words, classifier=True)


def test_a_configured_cross_encoder_orders_the_best_candidates(
    tmp_path: Path, small: QAService
) -> None:
    model = _tiny_cross_encoder(tmp_path / "tiny-ce")
    settings = small.settings.model_copy(
        update={"retrieval": small.settings.retrieval.model_copy(update={"reranker": str(model)})}
    )
    service = QAService(settings, embedder=small.embedder)
    question = "Which air base did the drone over the convoy fly from?"
    plain = small.search(question)
    reranked = service.search(question)
    assert plain is not None and reranked is not None
    depth = min(settings.retrieval.rerank_depth, len(plain.hits))
    cross = CrossEncoderReranker(str(model))
    expected = cross.scores(question, [f"{h.article.title}. {h.chunk.text}" for h in plain.hits])
    order = np.argsort(-expected[:depth], kind="stable")
    assert [h.chunk_id for h in reranked.hits[:depth]] == [plain.hits[i].chunk_id for i in order]
    assert reranked.answerable == plain.answerable  # it orders; it does not decide


def test_a_cross_encoder_that_cannot_load_is_a_model_error(tmp_path: Path) -> None:
    broken = CrossEncoderReranker(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelError, match="cannot load the reranker"):
        broken.scores("q", ["p"])


def test_rankers_follow_the_settings() -> None:
    hand = load_rankers(RetrievalSettings(ranker="hand"), CountingEmbedder())
    assert hand.learned is None and hand.cross is None
    crossed = load_rankers(RetrievalSettings(reranker="some/model"), CountingEmbedder())
    assert crossed.cross is not None and crossed.cross.name == "some/model"
    assert json.loads(LearnedRanker.load().to_json())["model_id"].startswith("all-MiniLM")


def test_the_speaker_of_a_question_is_a_name_however_it_is_typed(small: QAService) -> None:
    lexical = small.snapshot().lexical
    lower = analyse("what did boris johnson say about the convoy", lexical)
    assert lower.unknown_names == ("boris",)
    titled = analyse("what did iran's foreign minister say about the convoy", lexical)
    assert titled.unknown_names == ("iran's",)
    # A later word of the speaker counts only when it is no dictionary word...
    assert analyse("what did the syrian zorbatov say", lexical).unknown_names == ("zorbatov",)
    # ... so a paraphrased title still searches: "envoy" for the articles' "ambassador".
    assert analyse("what did the syrian envoy say about the siege", lexical).unknown_names == ()
    assert analyse("what did lavrov say about the talks", lexical).unknown_names == ()


@pytest.mark.model
def test_a_short_month_name_is_read_as_the_month_the_articles_write(
    seeds_service: QAService,
) -> None:
    lexical = seeds_service.snapshot().lexical
    query = analyse("How many attacks happened after Sept 12?", lexical)
    assert query.unknown_names == () and "september" in query.terms
    # A month the articles never write stays a word no article mentions.
    assert analyse("What happened in Aug?", lexical).unknown_names == ("Aug",)


def test_according_to_names_the_source_up_to_the_question_it_asks(small: QAService) -> None:
    lexical = small.snapshot().lexical
    casual = analyse("according to lavrov whats the force that fights best", lexical)
    assert casual.unknown_names == ()
    assert analyse("according to merkel who flew the drone", lexical).unknown_names == ("merkel",)
    assert analyse("According to Merkel, who flew the drone?", lexical).unknown_names == ("Merkel",)


def test_a_part_of_the_article_as_the_source_names_no_one(small: QAService) -> None:
    # "closing" and "quoting" are words no article holds, but here they describe the article
    # the answer is in, not someone who spoke.
    lexical = small.snapshot().lexical
    closing = "according to the closing paragraph of the article, how many people fled?"
    assert not any(lexical.holds(t) for t in terms("closing quoting"))
    assert analyse(closing, lexical).unknown_names == ()
    quoting = "according to the article quoting lavrov, who flew the drone?"
    assert analyse(quoting, lexical).unknown_names == ()
    # A name typed as one still counts, and so does a speaker who is no part of the article.
    named = analyse("according to the article quoting Merkel, who flew the drone?", lexical)
    assert named.unknown_names == ("Merkel",)
    minister = analyse("according to the closing minister who flew the drone", lexical)
    assert minister.unknown_names == ("closing",)
    # A photo caption is a part of the article too, whatever words no article holds it uses.
    caption = "In which city were the talks held, according to the photo caption?"
    assert not any(lexical.holds(t) for t in terms("caption"))
    assert analyse(caption, lexical).unknown_names == ()
    assert analyse("according to the photograph, who flew the drone?", lexical).unknown_names == ()
