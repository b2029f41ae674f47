from closedloop_acquisition.main import DEFINITION
from loopkit.runtime import main

main(DEFINITION)
