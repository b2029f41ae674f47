from closedloop_gateway.main import DEFINITION
from loopkit.runtime import main

main(DEFINITION)
