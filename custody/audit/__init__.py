"""Audits: audit runs, the rotating schedule and shards, findings and metrics.
"""
