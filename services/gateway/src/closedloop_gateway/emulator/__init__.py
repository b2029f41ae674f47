"""A local WeChat / WeCom API emulator for `make run` and the tests (not used in production)."""
