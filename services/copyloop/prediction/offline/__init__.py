"""Offline tools, never imported by the service.

market_eval  train/evaluate on the synthetic market (copyloop.demo.market) with an oracle:
             `python -m copyloop.prediction.offline.market_eval --help`
upworthy     reader for the Upworthy Research Archive A/B test CSV
"""
