"""Browser tests of the dashboard (marker `browser`)."""
