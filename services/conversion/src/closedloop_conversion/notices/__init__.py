"""Rep notices: a rep is told of a new task or a newly assigned lead through the corp's WeCom
application (the gateway's message/send), once per idempotency key."""
