pytest_plugins = ["loopkit_dev.testing"]
