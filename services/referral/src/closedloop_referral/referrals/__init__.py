"""Attribution of leads to referrers, rewards and their hold, fraud checks, the ledger, the tree
and stats (no transport here)."""
