"""Development-only parts of the kit: pytest fixtures (`testing`), `make run` (`runner`) and the
bundled nats-server (`natsserver`). Never installed in a service image."""
