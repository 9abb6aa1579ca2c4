"""The side-by-side: a Steps model and its twin through the same demo chain over
several seeds, with intervals (``side_by_side``); a Steps model started from its
twin's weights at the demo's scale (``from_twin``); frozen-backbone probes of a
finished comparison (``frozen_probes``)."""
