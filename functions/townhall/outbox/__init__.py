"""The event outbox: every change others must hear about is an event item written in the same
transaction as the change, and delivered from the table's stream (see docs/outbox.md)."""
