"""Media: probing recordings, packet lists, clip verification and contact sheets.
"""
