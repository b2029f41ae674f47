from closedloop_identity.main import DEFINITION
from loopkit.runtime import main

main(DEFINITION)
