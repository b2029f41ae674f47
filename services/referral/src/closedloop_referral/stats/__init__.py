"""Program stats and the referral tree: reads through the owning concepts' repositories."""
