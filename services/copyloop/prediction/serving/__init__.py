"""The scoring hot path (the service hot-swaps scorers in `copyloop.prediction.domain`).

scorer      Scorer.score(user, context, candidates) -> list[ScoreResult]; score_arrays the same
            as arrays (what Score's reply is encoded from)
cold_start  the prior that scores before any model is trained
"""
