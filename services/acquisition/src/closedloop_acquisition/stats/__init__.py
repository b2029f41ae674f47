"""Channel and campaign statistics, read from the touches and leads."""
