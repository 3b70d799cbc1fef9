"""Per-impression probabilities: what the ESMM model, its calibration, the baselines and the
cold-start prior all return, so serving and training compare like with like."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Predictions:
    """Per-impression probabilities of the three ESMM tasks."""

    p_ctr: NDArray[np.float64]
    p_cvr: NDArray[np.float64]  # P(purchase | click)

    @property
    def p_ctcvr(self) -> NDArray[np.float64]:
        return self.p_ctr * self.p_cvr

    def __len__(self) -> int:
        return int(self.p_ctr.shape[0])
