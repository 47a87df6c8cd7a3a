"""Supervision (电子监察) and push: the outbox of events, alerts, subscriptions and delivery, and
what a supervision office reads. Above ``verify`` and below the edge: it observes every audited
action of the layers beneath and never changes their records."""
