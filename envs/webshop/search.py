"""BM25 search over product documents, set up like the original WebShop's Lucene index.

The original indexes each product with pyserini (Anserini's default English analyzer: possessive
removal, lower-casing, Lucene's English stopwords, Porter stemming) and ranks with Lucene's BM25,
k1 = 0.9, b = 0.4. This module does the same in NumPy/SciPy: one sparse matrix of per-(document,
term) BM25 weights, built once, so a query is a sparse dot product. Differences from Lucene: token
boundaries are runs of letters and digits (close to, not exactly, Lucene's StandardTokenizer), and
document lengths are exact (Lucene stores them in a lossy single byte).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

K1, B = 0.9, 0.4
"""Anserini/pyserini's BM25 defaults, which WebShop's search used."""

STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)
"""Lucene's English stopword set (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET)."""

_TOKEN = re.compile(r"[a-z0-9]+")
_POSSESSIVE = re.compile(r"'s\b")


class Analyzer:
    """Lower-case, drop possessives and stopwords, Porter-stem (stems are memoised)."""

    def __init__(self) -> None:
        import snowballstemmer

        self._stemmer = snowballstemmer.stemmer("porter")
        self._stems: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        words = _TOKEN.findall(_POSSESSIVE.sub("", text.lower()))
        out = []
        for w in words:
            if w in STOPWORDS:
                continue
            stem = self._stems.get(w)
            if stem is None:
                stem = self._stems[w] = self._stemmer.stemWord(w)
            out.append(stem)
        return out


@dataclass
class Hit:
    doc: int
    score: float


class BM25Index:
    """BM25 (Lucene's idf, k1, b) over a fixed list of documents."""

    def __init__(self, docs: Sequence[str], k1: float = K1, b: float = B) -> None:
        self.analyzer = Analyzer()
        vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(docs))
        for d, text in enumerate(docs):
            terms = self.analyzer(text)
            lengths[d] = len(terms)
            for term, tf in Counter(terms).items():
                rows.append(d)
                cols.append(vocab.setdefault(term, len(vocab)))
                tfs.append(tf)
        self.vocab = vocab
        n_docs = len(docs)
        tf = np.asarray(tfs)
        df = np.bincount(np.asarray(cols, dtype=np.int64))  # every vocab id occurs in cols
        idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
        avgdl = lengths.mean() if n_docs else 1.0
        norm = k1 * (1.0 - b + b * lengths[np.asarray(rows, dtype=np.int64)] / avgdl)
        weights = idf[np.asarray(cols, dtype=np.int64)] * tf / (tf + norm)
        # term-major (CSR over terms): a query reads a few rows
        self._weights = sparse.csr_matrix((weights, (cols, rows)), shape=(len(vocab), n_docs))

    def search(self, query: str, k: int = 50) -> list[Hit]:
        """The top `k` documents with a positive score, best first; ties by document order."""
        counts = Counter(t for t in self.analyzer(query) if t in self.vocab)
        if not counts:
            return []
        ids = [self.vocab[t] for t in counts]
        q = np.asarray([counts[t] for t in counts])
        scores = np.asarray(self._weights[ids].T @ q).ravel()
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:  # keep every document tied with the k-th score, then cut after sorting
            kth = np.partition(-scores[hits], k - 1)[k - 1]
            hits = hits[-scores[hits] <= kth]
        order = np.lexsort((hits, -scores[hits]))[:k]
        return [Hit(int(hits[i]), float(scores[hits[i]])) for i in order]
