from closedloop_gateway.models import Base
from loopkit.migrations import run_env

run_env(Base.metadata)
