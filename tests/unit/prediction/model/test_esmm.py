"""ESMM model: pCTCVR = pCTR x pCVR, and the CVR tower learns through the CTCVR loss alone."""

from __future__ import annotations

import numpy as np
import torch

from copyloop.demo.market import ImpressionLog
from copyloop.prediction.model.esmm import EsmmModel, InputDims, esmm_loss
from copyloop.prediction.model.version import ModelVersion


def test_esmm_ctcvr_is_ctr_times_cvr(trained: ModelVersion, market_log: ImpressionLog) -> None:
    batch = trained.encoder.encode_examples(market_log.examples[:256])
    with torch.inference_mode():
        ctr_logit, cvr_logit = trained.model(batch.tensors())
    p_ctr, p_cvr = torch.sigmoid(ctr_logit), torch.sigmoid(cvr_logit)
    preds = trained.predict_raw(batch)
    assert np.allclose(preds.p_ctr, p_ctr.double().numpy(), atol=1e-7)
    assert np.allclose(preds.p_ctcvr, (p_ctr * p_cvr).double().numpy(), atol=1e-7)
    calibrated = trained.predict(batch)
    assert np.allclose(calibrated.p_ctcvr, calibrated.p_ctr * calibrated.p_cvr)


def test_esmm_loss_trains_cvr_through_ctcvr_only() -> None:
    """The CVR tower gets gradient from impressions that were never clicked (no selection bias)."""
    dims = InputDims(
        n_cat=2,
        table_size=10,
        bag_buckets={"segments": 4, "segment_style": 4, "ngrams": 4},
        n_dense=1,
        text_dim=2,
    )
    model = EsmmModel(dims)
    inputs = {
        "cat": torch.tensor([[1, 5]]),
        "segments": torch.tensor([[1]]),
        "segment_style": torch.tensor([[1]]),
        "ngrams": torch.tensor([[1]]),
        "dense": torch.zeros(1, 1),
        "text": torch.zeros(1, 2),
    }
    ctr_logit, cvr_logit = model(inputs)
    loss = esmm_loss(ctr_logit, cvr_logit, torch.tensor([0.0]), torch.tensor([0.0]))  # unclicked
    loss.backward()
    cvr_grad = sum(p.grad.abs().sum() for p in model.cvr_tower.parameters() if p.grad is not None)
    assert float(cvr_grad) > 0
