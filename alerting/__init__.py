"""Alerting: rules evaluated on the rollups, Grafana/Prometheus states, notifications.

Small stages in a fixed order, each testable alone (as in Alertmanager's pipeline):

1. evaluation (:mod:`alerting.evaluate`): a rule's series read from the rollups through a
   scoped connection (an org's rules as that tenant, staff rules as support);
2. state transition (:mod:`alerting.states`): the pure state machine;
3. notification (:mod:`alerting.notify`): inbox rows, grouping, silences;
4. delivery (:mod:`alerting.deliver`): durable deliveries with retries, signed webhooks,
   Slack, email and Alertmanager, every user URL through the SSRF guard
   (:mod:`alerting.ssrf`).

:mod:`alerting.cycle` runs stages 1-3 for a bounded batch of due rules.
"""
