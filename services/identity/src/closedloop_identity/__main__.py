from loopkit.runtime import main

from closedloop_identity.main import DEFINITION

main(DEFINITION)
