"""Bot runners: start and supervise bot subprocesses. Nothing here knows about Redis or HTTP."""
