"""Offline tools, never imported by the service.

content_effect  train the production content-effect model (copy quality) from the Upworthy
                archive in ../shared/data into var/models/content_effect:
                `python -m copyloop.prediction.offline.content_effect train`
market_eval     train/evaluate on the synthetic market (copyloop.demo.market) with an oracle:
                `python -m copyloop.prediction.offline.market_eval --help`
upworthy        reader for the Upworthy Research Archive A/B test CSV (variants and stories)
"""
