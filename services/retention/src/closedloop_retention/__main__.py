from closedloop_retention.main import DEFINITION
from loopkit.runtime import main

main(DEFINITION)
