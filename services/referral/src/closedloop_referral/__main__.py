from closedloop_referral.main import DEFINITION
from loopkit.runtime import main

main(DEFINITION)
