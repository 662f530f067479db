"""Cases: incidents, retention categories, legal holds and disposition.
"""
