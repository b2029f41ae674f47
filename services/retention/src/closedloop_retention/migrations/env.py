from closedloop_retention.models import Base
from loopkit.migrations import run_env

run_env(Base.metadata)
