"""Response data: dense examinees x items matrices and sparse (incomplete) designs.

Dense responses are integer arrays (n_examinees, n_items): 1 correct, 0 wrong,
-1 (``MISSING``) not presented. An incomplete design, where each examinee sees a
few of many items, is a ``SparseResponses`` in compressed-row form, so that a
bank of thousands of items never becomes a dense float matrix.

Every estimator reduces the data to two operations over quadrature nodes, done a
chunk of examinees at a time:

* node log-likelihood  L[i, q] = sum_j x_ij log P_jq + (1 - x_ij) log(1 - P_jq)
  over presented items (a matrix product), and
* expected counts      r[j, q] = sum_i x_ij w_iq,  n[j, q] = sum_i presented_ij w_iq
  for posterior weights w (the transposed product).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, cast

import numpy as np

MISSING = -1


@dataclass(frozen=True)
class SparseResponses:
    """Responses of an incomplete design in compressed-row (CSR) form.

    indptr: (n_examinees + 1,) the responses of examinee i are at
        ``indptr[i]:indptr[i + 1]``; item: (n_responses,) item column of each
        response; correct: (n_responses,) 1 or 0; n_items: columns of the bank.
    """

    indptr: np.ndarray
    item: np.ndarray
    correct: np.ndarray
    n_items: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "indptr", np.asarray(self.indptr, dtype=np.int64))
        object.__setattr__(self, "item", np.asarray(self.item, dtype=np.int32))
        object.__setattr__(self, "correct", np.asarray(self.correct, dtype=np.int8))
        if self.item.shape != self.correct.shape or self.indptr[-1] != self.item.shape[0]:
            raise ValueError("indptr, item and correct do not describe one CSR matrix")
        if self.item.size and (self.item.min() < 0 or self.item.max() >= self.n_items):
            raise ValueError(f"item columns must lie in [0, {self.n_items})")
        if np.any((self.correct != 0) & (self.correct != 1)):
            raise ValueError("correct must hold only 0 and 1")

    @property
    def n_examinees(self) -> int:
        return self.indptr.shape[0] - 1

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_examinees, self.n_items)

    @classmethod
    def from_dense(cls, responses: np.ndarray) -> "SparseResponses":
        """The presented cells (not -1) of a dense (n_examinees, n_items) matrix."""
        responses = check_responses(responses)
        rows, cols = np.nonzero(responses != MISSING)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=responses.shape[0]))])
        return cls(indptr, cols, responses[rows, cols], responses.shape[1])

    @classmethod
    def from_triples(cls, examinee, item, correct, n_examinees: int, n_items: int) -> "SparseResponses":
        """From one row per response: examinee index, item index, 1/0 correct (long format)."""
        examinee = np.asarray(examinee, dtype=np.int64)
        order = np.argsort(examinee, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(np.bincount(examinee, minlength=n_examinees))])
        return cls(indptr, np.asarray(item)[order], np.asarray(correct)[order], n_items)

    def to_dense(self) -> np.ndarray:
        """The (n_examinees, n_items) int8 matrix with -1 where nothing was presented."""
        dense = np.full(self.shape, MISSING, dtype=np.int8)
        rows = np.repeat(np.arange(self.n_examinees), np.diff(self.indptr))
        dense[rows, self.item] = self.correct
        return dense

    def select_items(self, columns: np.ndarray) -> "SparseResponses":
        """Only the responses to ``columns`` (renumbered 0..len(columns)-1)."""
        new_index = np.full(self.n_items, -1, dtype=np.int64)
        new_index[np.asarray(columns)] = np.arange(len(columns))
        keep = new_index[self.item] >= 0
        rows = np.repeat(np.arange(self.n_examinees), np.diff(self.indptr))[keep]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.n_examinees))])
        return SparseResponses(indptr, new_index[self.item[keep]], self.correct[keep], len(columns))


def group_sums(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Row sums of ``values`` (n, m) within each group label 0 .. n_groups - 1: (n_groups, m)."""
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sums = np.add.reduceat(np.asarray(values, dtype=np.float64)[order], np.minimum(starts, len(group) - 1), axis=0)
    sums[counts == 0] = 0.0
    return sums


def check_responses(responses: np.ndarray) -> np.ndarray:
    """A dense response matrix as int8 after checking it, like scikit-learn's ``check_array``.

    It must be 2-D, of a boolean, integer or floating dtype, finite, and hold only
    1 (correct), 0 (wrong) and -1 (not presented); a float 0.5 is an error, not a 0.
    """
    responses = np.asarray(responses)
    if responses.ndim != 2:
        raise ValueError(f"responses must be 2-D (n_examinees, n_items), got shape {responses.shape}")
    if responses.dtype == np.int8 or responses.dtype == np.bool_:
        bad = (responses < MISSING) | (responses > 1) if responses.dtype == np.int8 else None
    elif responses.dtype.kind in "iuf":
        bad = ~np.isin(responses, (MISSING, 0, 1))
    else:
        raise ValueError(f"responses must be numbers 1, 0 and -1, got dtype {responses.dtype}")
    if bad is not None and bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"responses may hold only 1 (correct), 0 (wrong) and -1 (not presented); found "
                         f"{responses[row, column].item()!r} at row {row}, column {column} ({int(bad.sum())} such cells)")
    return responses.astype(np.int8, copy=False)


class _DenseBlock:
    """A chunk of a dense matrix as float indicators (presented is None when complete)."""

    def __init__(self, responses: np.ndarray, dtype=np.float64):
        self.n = responses.shape[0]
        self.dtype = dtype
        if responses.size == 0 or responses.min() >= 0:
            self.correct = responses.astype(dtype)
            self.presented = None
        else:
            self.correct = (responses == 1).astype(dtype)
            self.presented = (responses >= 0).astype(dtype)

    def node_log_likelihood(self, log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
        # x log p + (1 - x) log q = x (log p - log q) + log q: with complete data the
        # second term is the same for every examinee, saving one product.
        loglik = self.correct @ (log_p - log_q).astype(self.dtype)
        if self.presented is None:
            loglik += log_q.sum(axis=0).astype(self.dtype)
        else:
            loglik += self.presented @ log_q.astype(self.dtype)
        return loglik

    def expected_counts(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        correct = self.correct.T @ weights
        if self.presented is None:
            presented = np.broadcast_to(weights.sum(axis=0), correct.shape)
        else:
            presented = self.presented.T @ weights
        return correct, presented

    def indicators(self) -> tuple[np.ndarray, np.ndarray]:
        """(correct, presented) as dense float (n, n_items) arrays."""
        presented = np.ones_like(self.correct) if self.presented is None else self.presented
        return self.correct, presented

    def triplets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, item, correct) of every presented response in the block."""
        correct, presented = self.indicators()
        rows, items = np.nonzero(presented)
        return rows, items, correct[rows, items]


class _SparseBlock:
    """A chunk of a sparse design: one CSR matrix with a 1 in column 2 j + x_ij."""

    def __init__(self, data: SparseResponses, start: int, stop: int, dtype=np.float64):
        lo, hi = data.indptr[start], data.indptr[stop]
        self.dtype = dtype
        columns = 2 * data.item[lo:hi].astype(np.int64) + data.correct[lo:hi]
        self.n = stop - start
        self.n_items = data.n_items
        from scipy import sparse  # imported late: a second of start-up for dense-only users

        self.matrix = sparse.csr_matrix(
            (np.ones(hi - lo, dtype=dtype), columns, data.indptr[start : stop + 1] - lo), shape=(self.n, 2 * data.n_items)
        )

    @staticmethod
    def _interleave(log_p: np.ndarray, log_q: np.ndarray, dtype) -> np.ndarray:
        table = np.empty((2 * log_p.shape[0], log_p.shape[1]), dtype=dtype)
        table[0::2] = log_q
        table[1::2] = log_p
        return table

    def node_log_likelihood(self, log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix @ self._interleave(log_p, log_q, self.dtype))

    def expected_counts(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        both = np.asarray(self.matrix.T @ weights)
        return both[1::2], both[0::2] + both[1::2]

    def indicators(self) -> tuple[np.ndarray, np.ndarray]:
        dense = self.matrix.toarray()
        return dense[:, 1::2], dense[:, 0::2] + dense[:, 1::2]

    def triplets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.repeat(np.arange(self.n), np.diff(self.matrix.indptr))
        return rows, self.matrix.indices // 2, (self.matrix.indices % 2).astype(np.float64)


class ResponseData:
    """Dense or sparse responses behind one chunked interface (internal)."""

    def __init__(self, source: np.ndarray | SparseResponses):
        self.source = source
        self.n_examinees, self.n_items = source.shape
        self.sparse = isinstance(source, SparseResponses)

    def blocks(self, chunk_size: int, dtype=np.float64) -> Iterator[_DenseBlock | _SparseBlock]:
        """Chunks of ``chunk_size`` examinees. float32 halves the cost of the products;
        the estimators use it where the result is a weighted mean (EAP, EM counts)
        and float64 where a log-likelihood is reported."""
        total = self.n_examinees
        for start in range(0, total, chunk_size):
            stop = min(start + chunk_size, total)
            if self.sparse:
                yield _SparseBlock(cast(SparseResponses, self.source), start, stop, dtype)
            else:
                yield _DenseBlock(cast(np.ndarray, self.source)[start:stop], dtype)

    def select_items(self, columns: np.ndarray) -> "ResponseData":
        if self.sparse:
            return ResponseData(cast(SparseResponses, self.source).select_items(columns))
        return ResponseData(np.ascontiguousarray(cast(np.ndarray, self.source)[:, columns]))

    def number_correct(self) -> tuple[np.ndarray, np.ndarray]:
        """(number correct, number presented) per examinee, each (n_examinees,)."""
        if self.sparse:
            csr = cast(SparseResponses, self.source)
            rows = np.repeat(np.arange(self.n_examinees), np.diff(csr.indptr))
            return (np.bincount(rows, weights=csr.correct, minlength=self.n_examinees),
                    np.diff(csr.indptr).astype(float))
        dense = cast(np.ndarray, self.source)
        return (dense == 1).sum(axis=1).astype(float), (dense >= 0).sum(axis=1).astype(float)

    def item_score_correlation(self) -> np.ndarray:
        """(n_items,) correlation of each item with the proportion-correct score, over
        the examinees presented the item."""
        n_correct, n_presented = self.number_correct()
        score = n_correct / np.maximum(n_presented, 1.0)
        if self.sparse:
            csr = cast(SparseResponses, self.source)
            rows = np.repeat(np.arange(self.n_examinees), np.diff(csr.indptr))
            x, s, j = csr.correct.astype(np.float64), score[rows], csr.item
            sums = [np.bincount(j, weights=w, minlength=self.n_items) for w in (np.ones_like(x), x, s, s * s, x * s)]
        else:
            dense = cast(np.ndarray, self.source)
            correct = (dense == 1).astype(np.float64)
            presented = (dense >= 0).astype(np.float64)
            sums = [presented.sum(axis=0), correct.sum(axis=0), score @ presented, score**2 @ presented,
                    score @ correct]
        n, sx, ss, sss, sxs = sums
        with np.errstate(invalid="ignore", divide="ignore"):
            mx, ms = sx / n, ss / n
            cov = sxs / n - mx * ms
            return cov / np.sqrt((mx - mx**2) * (sss / n - ms**2))

    def item_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(number correct, number presented) per item, each (n_items,)."""
        if self.sparse:
            csr = cast(SparseResponses, self.source)
            return (np.bincount(csr.item, weights=csr.correct, minlength=self.n_items),
                    np.bincount(csr.item, minlength=self.n_items).astype(float))
        dense = cast(np.ndarray, self.source)
        return (dense == 1).sum(axis=0).astype(float), (dense >= 0).sum(axis=0).astype(float)


def as_response_data(responses, n_items: int | None = None) -> ResponseData:
    """Wrap dense or sparse responses, checking codes and the number of items."""
    source = responses if isinstance(responses, SparseResponses) else check_responses(responses)
    if n_items is not None and source.shape[1] != n_items:
        raise ValueError(f"responses must have shape (n_examinees, {n_items}), got {source.shape}")
    return ResponseData(source)
