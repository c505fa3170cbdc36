"""Notifications: the notifier adapters (Slack incoming webhook, signed JSON webhook, e-mail
over SMTP), alert routing from the deployment config, and delivery from the outbox.

* ``config``   - destinations, routes, quiet hours, retry (``alerts:`` of alluse.yaml);
* ``secrets``  - secret values from environment variables, scrubbed from every message;
* ``slack`` / ``webhook`` / ``smtp`` - one ``engine.records.alerts.Notifier`` each;
* ``dispatch`` - build the notifiers, deliver what the outbox holds, retry with backoff.
"""
