"""Decoding a translation model: beam search with a length penalty (greedy is one beam), and the
scores papers report, with ``sacrebleu``.

Beam search as in Wu et al. 2016 ("Google's Neural Machine Translation System", section 7) and the
Transformer paper (section 6.1: beam size 4, length penalty alpha = 0.6): ``beam_size``
hypotheses per sentence grow a token at a time, each scored by its summed log-probability; a
hypothesis that emits the end token is finished and stays as it is; at the end the best by
score / ((5 + length) / 6) ** alpha is kept. keras-hub's ``BeamSampler`` has no length penalty,
hence this one.

The model is called on whole prefixes, every step (no cache): the translation sets here are short,
and every call has the same shapes, so it compiles once.
"""

from __future__ import annotations

import numpy as np


def beam_search(probabilities, sources, *, start: int, end: int, length: int, beam_size=4, alpha=0.6):
    """Token ids (``[n, length]``, 0 after the end) of the best hypothesis for each source row.

    ``probabilities(sources, prefixes)`` gives the next-token distribution at every position of
    ``prefixes`` (``[rows, length]``, start token first) for ``sources`` (one row each)."""
    n, k = len(sources), beam_size
    rows = np.repeat(np.asarray(sources), k, axis=0)
    prefixes = np.zeros((n, k, length + 1), "int32")
    prefixes[..., 0] = start
    scores = np.full((n, k), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis to begin with
    done = np.zeros((n, k), bool)
    lengths = np.zeros((n, k), "int32")
    for t in range(length):
        probs = probabilities(rows, prefixes.reshape(n * k, -1)[:, :length])[:, t]
        logp = np.log(np.maximum(probs.reshape(n, k, -1), 1e-30))
        logp[..., 0] = -np.inf  # never padding while unfinished...
        logp[done] = -np.inf
        logp[done, 0] = 0.0  # ...and only padding, at no cost, once finished
        candidates = (scores[..., None] + logp).reshape(n, -1)
        best = np.argsort(-candidates, axis=1, kind="stable")[:, :k]
        beam, token = np.divmod(best, logp.shape[-1])
        scores = np.take_along_axis(candidates, best, axis=1)
        picked = np.arange(n)[:, None]
        prefixes, done, lengths = prefixes[picked, beam], done[picked, beam], lengths[picked, beam]
        prefixes[..., t + 1] = token
        lengths = np.where(done, lengths, t + 1)
        done = done | (token == end)
        if done.all():
            break
    penalty = ((5.0 + lengths) / 6.0) ** alpha
    chosen = np.argmax(np.where(np.isfinite(scores), scores / penalty, -np.inf), axis=1)
    return prefixes[np.arange(n), chosen, 1:]


def until_end(ids: np.ndarray, end: int) -> list[list[int]]:
    """Each row's tokens before its end token (all of them where it has none), padding dropped."""
    rows = []
    for row in np.asarray(ids):
        stop = np.flatnonzero(row == end)
        row = row[: stop[0]] if len(stop) else row
        rows.append([int(t) for t in row if t != 0])
    return rows


def scores(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU (Papineni et al. 2002) and chrF (Popovic 2015) as ``sacrebleu`` computes them
    (its default tokenization, 13a, on detokenized text, the scores papers compare), and the share
    of sentences translated exactly."""
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    exact = float(np.mean([h.strip() == r.strip() for h, r in zip(hypotheses, references)]))
    return {
        "bleu": round(bleu.score, 2),
        "chrf": round(chrf.score, 2),
        "exact_match": exact,
        "sacrebleu": str(bleu),
    }
