"""Reports on a whc CSV: a per-unit summary (terminal, CSV, Markdown) and plots (``python3 report.py``).

The CSV is streamed twice in bounded memory (see ``build``): pass 1 learns each unit's time span and
median interval, pass 2 finds the gaps and fills a fixed number of time buckets per unit for the plots.

- ``stream``   -- the file's layout, time parsing, rows one at a time, invalid rows counted
- ``sketch``   -- approximate medians in bounded memory
- ``seqcheck`` -- missing and duplicated seq numbers of one session in bounded memory
- ``summary``  -- per-unit statistics (pass 1), gaps (pass 2) and the summary they make
- ``build``    -- the two passes, giving a ``Report``
- ``envelope`` -- min/max/mean per time bucket for the plots (numpy, loaded only for plots)
- ``plots``    -- one PNG per unit (matplotlib, loaded only for plots)
- ``tables``   -- the summary as terminal text, summary.csv and summary.md
- ``progress`` -- the progress line on stderr
"""
