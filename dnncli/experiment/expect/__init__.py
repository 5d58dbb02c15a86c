"""Expectations: what a run's outcome (``expect:`` in a config) or a sweep's trials (``expect:`` in a sweep file)
must show, parsed with the config and judged on the finished runs."""
