from closedloop_conversion.main import DEFINITION
from loopkit.runtime import main

main(DEFINITION)
