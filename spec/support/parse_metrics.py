#!/usr/bin/python3
"""Parses a metrics exposition from stdin with the official Prometheus Python client
(Debian's python3-prometheus-client) and prints its families as JSON, so spec/metrics.rs can
check what a real Prometheus parser understood.

Usage: parse_metrics.py prometheus|openmetrics < exposition
The OpenMetrics parser is strict (it requires # EOF and well-formed families); any parse
error exits non-zero with the parser's message."""

import json
import sys

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as prometheus_families

fmt = sys.argv[1]
text = sys.stdin.read()
parse = openmetrics_families if fmt == "openmetrics" else prometheus_families
families = {}
for family in parse(text):
    families[family.name] = {
        "type": family.type,
        "help": family.documentation,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
json.dump(families, sys.stdout)
