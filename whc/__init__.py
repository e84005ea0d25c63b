"""whc: Sense HAT readings from a fleet of Raspberry Pis, logged on a central server.

The package is laid out along the data path:

- ``sampling``  -- reading the Sense HAT (``backends/`` holds one module per sensor source)
- ``buffering`` -- the sender's store-and-forward queue and on-disk spool
- ``protocol``  -- the wire protocol (JSON Lines over TCP), shared by both sides
- ``serving``   -- the aggregator's event loop and per-connection handling
- ``storage``   -- where accepted readings go (``sinks/``: CSV by default, or PostgreSQL)
- ``reporting`` -- report.py: a streaming per-unit summary and plots of the CSV
"""

__version__ = "1.0.0"
