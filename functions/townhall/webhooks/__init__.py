"""Partner webhooks: subscriptions, the outbox consumer that enqueues deliveries, and the
sender that signs and posts them (docs/partners.md#webhooks)."""
