"""The trained models: what training writes and serving loads.

esmm            ESMM (pCTCVR = pCTR x pCVR) on a DCN-v2 body; gradient x input attribution
predictions     per-impression pCTR / pCVR arrays (what every model and baseline returns)
calibration     centred isotonic and temperature scaling per task
version         ModelVersion folders: save_version / load_version
content_effect  pairwise copy-quality model learned from A/B test history
runtime         torch thread settings for training and scoring
"""
