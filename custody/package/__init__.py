"""The prosecutor's package: export as a BagIt bag, the report, offline verification
(`verify-package`) and receipts.
"""
