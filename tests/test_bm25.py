"""BM25 (Lucene's formula, WebShop's k1 = 0.9, b = 0.4) against scores computed by hand:
stopwords out of document lengths, repeated query terms, ties at the cut, analyzer details."""

from __future__ import annotations

import math

import pytest

from rlpost.envs.webshop.search import Analyzer, BM25Index


def bm25(tf: float, df: int, n: int, dl: float, avgdl: float, k1=0.9, b=0.4) -> float:
    """One term's score: Lucene's idf log(1 + (N - df + .5)/(df + .5)) times the tf part."""
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))


def test_stopwords_do_not_count_in_document_length():
    # analysed: [red, shoe, king], [red, shoe], [boot] -> lengths 3, 2, 1; average 2
    index = BM25Index(["The red shoes of the king's", "red shoes", "a boot"])
    hits = index.search("red")
    assert [h.doc for h in hits] == [1, 0]
    assert hits[0].score == pytest.approx(bm25(1, 2, 3, 2, 2))
    assert hits[1].score == pytest.approx(bm25(1, 2, 3, 3, 2))
    # counted with their stopwords the lengths would be 6, 2, 2: another score
    assert hits[1].score != pytest.approx(bm25(1, 2, 3, 6, 10 / 3))


def test_repeated_query_terms_count_each_time():
    index = BM25Index(["red shoes", "red red hat", "green shoes", "blue sky"])
    one = {h.doc: h.score for h in index.search("red")}
    two = {h.doc: h.score for h in index.search("red red")}
    assert two.keys() == one.keys() == {0, 1}
    assert all(two[d] == pytest.approx(2 * one[d]) for d in one)
    hits = index.search("shoes shoes red")
    avg = 2.25
    expected = {0: 2 * bm25(1, 2, 4, 2, avg) + bm25(1, 2, 4, 2, avg),
                1: bm25(2, 2, 4, 3, avg), 2: 2 * bm25(1, 2, 4, 2, avg)}
    assert {h.doc: h.score for h in hits} == pytest.approx(expected)
    assert [h.doc for h in hits] == [0, 2, 1]


def test_ties_at_the_cut_keep_document_order_and_k_results():
    docs = ["blue mug"] * 5 + ["blue blue"]
    index = BM25Index(docs)
    hits = index.search("blue", k=3)
    assert [h.doc for h in hits] == [5, 0, 1]
    assert hits[1].score == hits[2].score < hits[0].score
    assert [h.doc for h in index.search("mug", k=4)] == [0, 1, 2, 3]
    assert [h.doc for h in index.search("mug", k=50)] == [0, 1, 2, 3, 4]  # positive scores only
    assert [h.doc for h in index.search("blue", k=1)] == [5]


def test_query_analysis_and_unknown_words():
    index = BM25Index(["Red Shoes", "running shoes", "tea"])
    assert [(h.doc, h.score) for h in index.search("RED, shoes!")] == \
        [(h.doc, h.score) for h in index.search("red shoe")]
    assert index.search("zebra") == [] and index.search("the of and") == []
    assert [h.doc for h in index.search("zebra runs")] == [1]


def test_other_k1_and_b():
    index = BM25Index(["a b c", "a a", "c"], k1=1.2, b=0.75)
    hits = index.search("a")
    # lengths [2 (b, c; 'a' is a stopword!), 0, 1]: 'a' is not indexed at all
    assert hits == []
    index = BM25Index(["x y z", "x x", "z"], k1=1.2, b=0.75)
    hits = {h.doc: h.score for h in index.search("x")}
    assert hits == pytest.approx({0: bm25(1, 2, 3, 3, 2, 1.2, 0.75),
                                  1: bm25(2, 2, 3, 2, 2, 1.2, 0.75)})


def test_analyzer():
    a = Analyzer()
    assert a("The runner's RUNNING shoes, and 2 socks.") == ["runner", "run", "shoe", "2", "sock"]
    assert a("") == [] and a("the a an") == []


def test_documents_without_terms_and_empty_corpora():
    # the last documents index nothing (stopwords only): they never match, the others score
    # against an average length over every document, the empty ones included
    index = BM25Index(["red shoes", "blue shoes", "the of", "and"])
    hits = index.search("red")
    assert [h.doc for h in hits] == [0]
    assert hits[0].score == pytest.approx(bm25(1, 1, 4, 2, 1.0))
    assert BM25Index(["the", "a"]).search("the red") == []
    assert BM25Index([]).search("red") == []


def test_top_k_with_distinct_scores_and_the_default_k():
    # "red" 4, 3, 2, 1 times in documents of the same length: four distinct scores
    docs = ["red red red red", "red red red blue", "red red blue blue", "red blue blue blue"]
    index = BM25Index(docs)
    assert [h.doc for h in index.search("red", k=2)] == [0, 1]
    assert [h.doc for h in index.search("red", k=3)] == [0, 1, 2]
    many = BM25Index(["red shoes"] * 60)
    assert [h.doc for h in many.search("red")] == list(range(50))  # WebShop keeps 50


def test_stems_are_computed_once_per_word():
    a = Analyzer()
    calls = []
    stem = a._stemmer.stemWord
    a._stemmer = type("Counting", (), {"stemWord": lambda self, w: calls.append(w) or stem(w)})()
    assert a("running runs running") == ["run", "run", "run"]
    assert a("running") == ["run"]
    assert calls == ["running", "runs"]
