"""What the models see, shared by serving and training.

types      plain data types the gRPC layer converts protos into (UserFeatures, ..., ScoreResult)
hashing    stable feature hashing (the same ids in every process)
text       MiniLM sentence embeddings (LRU cache by text hash), style signals, n-grams
encoder    FeatureEncoder: hashed categoricals, crosses, bags, dense, text -> tensors
ab_tests   A/B variants and comparable pairs: what the content-effect model learns from
"""
