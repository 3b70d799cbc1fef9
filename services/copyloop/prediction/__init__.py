"""PredictionService: how well will this copy work for this shopper, and learning it.

Service shape (top level): servicer (gRPC, thin), messages (proto <-> domain), domain (use
cases: scoring with a hot-swapped live model, training log, train / promote / rollback),
store + schema + migrations/, settings, errors, main.

Subpackages, by where the code runs (plain Python, testable without gRPC):
  features/  what the models see, shared by serving and training (types, hashing, text, encoder)
  model/     the trained models: what training writes and serving loads (ESMM, calibration,
             version folders, content-effect model)
  serving/   the scoring hot path (scorer, cold-start prior)
  training/  learning and judging versions (trainer, baselines, evaluation, compare, report)
  offline/   tools run by hand, never by the service (market_eval, upworthy)
Imports only go downwards: features <- model <- serving / training <- offline, with the
service shape on top (errors.py is a leaf every layer may raise); tests/unit/
test_import_cycles.py keeps the import graph acyclic.
"""
