"""The customer activity model, lifecycle stages and churn risk (pure rules + repository)."""
