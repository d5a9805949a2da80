"""The sign-off ledger: a hash-chained, optionally signed record of decisions, anchored in git."""
