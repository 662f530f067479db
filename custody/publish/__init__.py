"""Public data: the aggregated counts the city order promises, computed from the ledger.

This wing owns ``custody publish``: reading the incidents as they stood at one signed checkpoint
(``facts``), counting them into tables by period, agency, category of alleged violation and
what happened (``stats``), suppressing small counts so that none can be recovered from the
totals of all the tables together (``suppression``, over the joint system ``stats`` builds), writing a release (CSV, JSON, a Frictionless data package and one
static HTML page, ``release`` and ``render``) recorded by a ``published`` ledger event, and
checking a release, offline or by recomputing it from the ledger (``verify``).

A release holds no personal data, no incident ids, no free text, no places finer than the
configured level and no dates finer than the period. The categories of alleged violations are
data (``custody.cases.violations``); the rules a release used are stated in it and in its event.
"""
