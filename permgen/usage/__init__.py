"""What really happened: access logs and ActionTrail events read as requests (``logs``),
mapped to RAM actions, resources, context and principals (``mapping``), and each role of a
spec right-sized from them (``rightsize``, rendered by ``report``)."""
