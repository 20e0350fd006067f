"""The margin of wall-clock checks.

A timing check states a contract: never before a configured time (a lease, a timeout), and
done well before the slow path it rules out would end (another full timeout, a sleeping bot,
a hang). The margin is what a loaded 2-core machine may add to a measured interval (this
process, the server and the bots all wait for a core); it is not a speed target. Checks whose
slow path ends sooner than a bound plus this margin compare orders or ratios instead.
"""

MARGIN_S = 2.0
