pytest_plugins = ["loopkit.testing"]
