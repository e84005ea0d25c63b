"""Reading the Sense HAT: sensor back ends (``backends/``) and the LED status display (``led``)."""
