"""Buffering: the sender's store-and-forward queue (``buffer``) and its on-disk spool (``spool``)."""
