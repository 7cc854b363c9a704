"""A ``Measure`` that can be told to stop in the middle of the measure stage (for the crash test).

With ``IMPACT_TEST_HOLD=<initiative id>`` and ``IMPACT_TEST_MARKER=<file>`` in the environment,
the pilot measurement of that initiative creates the marker file and then waits, so that a test
can SIGKILL the run at a known point. Without them it is exactly ``Measure``.
"""

import os
import time
from pathlib import Path

from impact_assets.measure.component import Measure


class SlowMeasure(Measure):
    def execute(self, event):
        hold = os.environ.get("IMPACT_TEST_HOLD")
        marker = os.environ.get("IMPACT_TEST_MARKER")
        if hold and marker and event.get("initiative_id") == hold:
            Path(marker).write_text("holding\n")
            time.sleep(300)
        return super().execute(event)
