"""Grafana dashboards as JSON, generated from code and checked against storage relations."""
