"""loopkit: the one shared runtime of ClosedLoop's services.

Settings, database, transactional outbox and relay, idempotent event consumers, gRPC server and
client bootstrap, telemetry and logs — written once, used by every service.
"""
