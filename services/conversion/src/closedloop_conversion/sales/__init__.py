"""Sales reps, assignment rules and leads: who works a lead, chosen by the campaign's rule."""
