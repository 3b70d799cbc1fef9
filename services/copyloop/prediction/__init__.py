"""PredictionService domain: how well will this copy work for this shopper, and learning it.

Modules (plain Python, testable without gRPC):
  types            data types the gRPC layer converts protos into (UserFeatures, ..., ScoreResult)
  text_features    MiniLM sentence embeddings (LRU cache by text hash), style signals, n-grams
  features         FeatureEncoder: hashed categoricals, crosses, bags, dense, text -> tensors
  model            ESMM (pCTCVR = pCTR x pCVR) on a DCN-v2 body; gradient x input attribution
  baselines        logistic regression, popularity prior, cold-start prior
  training         train on a time window, calibrate on its tail, evaluate on a later window
  calibration      centred isotonic and temperature scaling per task
  evaluation       AUC, log loss, ECE, reliability tables
  version          ModelVersion folders: save_version / load_version
  report           report.md + ROC / reliability / loss PNGs
  compare          does a candidate version beat the live one on the same data
  scorer           Scorer.score(user, context, candidates) -> list[ScoreResult]
  content_effect   pairwise copy-quality model learned from A/B test history
  ab_tests         A/B variants, comparable pairs, split by test; upworthy: the archive's CSV
  market_eval      train/evaluate on the synthetic market (copyloop.demo.market) with an oracle
"""
